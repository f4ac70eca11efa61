/* dot_avx2.c — AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c); see dot_x86.h. */
#define AL_X86_VNNI 0
#define AL_X86_512 0
#define AL_X86_SFX avx2
#include "cpu/x86/dot_x86.h"
