/*
 * dot_avx512.c — AVX-512 F/BW/VL/DQ + VNNI kernels (see dot_x86.h): int8 dots use vpdpbusd,
 * legacy 32-blocks run two blocks per zmm step, float kernels run on zmm. K-quant kernels share
 * the 256-bit code (with VNNI-era codegen and 32 vector registers).
 */
#define AL_X86_VNNI 1
#define AL_X86_512 1
#define AL_X86_SFX avx512
#include "cpu/x86/dot_x86.h"
