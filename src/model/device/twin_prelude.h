// Put before kernels.cu when g++ compiles it for the CPU twin: the CUDA qualifiers mean
// nothing, the math functions are the C library's, and each kernel is a function that runs
// its body for every thread index, in the order it is given (the twin shuffles it).
#include <math.h>
#include <cmath>
#include <cstddef>

#define __global__
#define __device__
#define __host__
using std::isfinite;

#define KERNEL(name)                                                                   \
    extern "C" void twin_##name(const name##_params* p, const unsigned* order,         \
                                unsigned n) {                                          \
        for (unsigned k = 0; k < n; k++) name##_body(order[k], *p);                    \
    }
