/* OpenMP when the build has it, a one-thread stand-in otherwise, so the .pyx compiles either way. */
#ifndef IM2COL_OMP_COMPAT_H
#define IM2COL_OMP_COMPAT_H
#ifdef _OPENMP
#include <omp.h>
#define IM2COL_HAVE_OPENMP 1
#else
static inline int omp_get_max_threads(void) { return 1; }
#define IM2COL_HAVE_OPENMP 0
#endif
#endif
