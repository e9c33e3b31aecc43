file(REMOVE_RECURSE
  "CMakeFiles/fieldmatch.dir/src/util/files.c.o"
  "CMakeFiles/fieldmatch.dir/src/util/files.c.o.d"
  "CMakeFiles/fieldmatch.dir/src/util/progress.c.o"
  "CMakeFiles/fieldmatch.dir/src/util/progress.c.o.d"
  "CMakeFiles/fieldmatch.dir/src/util/strmap.c.o"
  "CMakeFiles/fieldmatch.dir/src/util/strmap.c.o.d"
  "CMakeFiles/fieldmatch.dir/src/util/util.c.o"
  "CMakeFiles/fieldmatch.dir/src/util/util.c.o.d"
  "libfieldmatch.pdb"
  "libfieldmatch.so"
  "libfieldmatch.so.0"
  "libfieldmatch.so.0.1.0"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/fieldmatch.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
