/* timefmt.c: wall-clock time in UTC as text: the store's timestamps, file
 * and run names.  One place for gmtime_r + strftime. */
#include "fm_util.h"

#include <stdio.h>
#include <time.h>

void fm_time_utc(int64_t t, const char *fmt, char *out, size_t n) {
  if (!n) return;
  time_t tt = (time_t)t;
  struct tm tm;
  out[0] = '\0';
  if (!gmtime_r(&tt, &tm)) return;
  if (strftime(out, n, fmt, &tm) == 0) out[0] = '\0';
}

void fm_time_iso(int64_t t, char *out, size_t n) {
  fm_time_utc(t, "%Y-%m-%dT%H:%M:%S.000Z", out, n);
}

void fm_time_now_iso(char *out, size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char base[24];
  fm_time_utc((int64_t)ts.tv_sec, "%Y-%m-%dT%H:%M:%S", base, sizeof base);
  /* tv_nsec is in [0, 1e9); the % 1000 only shows gcc -O3 the width */
  snprintf(out, n, "%s.%03uZ", base, (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}
