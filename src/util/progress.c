/* progress.c: a terminal progress bar on stderr, silent when not a tty. */
#include "fm_util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fm_progress_start(fm_progress *p, const char *label, uint64_t total) {
  const char *force = getenv("FM_PROGRESS");
  p->label = label;
  p->total = total;
  p->done = 0;
  p->started = fm_now();
  p->last_draw = 0;
  if (force && *force) p->enabled = strcmp(force, "0") != 0;
  else p->enabled = isatty(STDERR_FILENO);
}

static void draw(fm_progress *p, int final) {
  double now = fm_now();
  double el = now - p->started;
  int width = 30;
  double frac = p->total ? (double)p->done / (double)p->total : 1.0;
  if (frac > 1) frac = 1;
  int fill = (int)(frac * width);
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = '\0';
  double eta = (frac > 0 && frac < 1) ? el / frac - el : 0;
  fprintf(stderr, "\r%-10s [%s] %5.1f%% %llu/%llu %.1fs%s%.0fs left  ",
          p->label, bar, frac * 100, (unsigned long long)p->done,
          (unsigned long long)p->total, el, final ? "" : " ", final ? 0.0 : eta);
  if (final) fputc('\n', stderr);
  fflush(stderr);
  p->last_draw = now;
}

void fm_progress_update(fm_progress *p, uint64_t done) {
  p->done = done;
  if (!p->enabled) return;
  if (fm_now() - p->last_draw < 0.1) return;
  draw(p, 0);
}

void fm_progress_finish(fm_progress *p) {
  if (!p->enabled) return;
  p->done = p->total;
  draw(p, 1);
}
