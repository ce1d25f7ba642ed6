// Put before kernels.cu when NVRTC compiles it for the GPU: each kernel is a launcher over a
// one-dimensional grid, one thread per index below n.
#define KERNEL(name)                                                        \
    extern "C" __global__ void name(name##_params p, unsigned n) {          \
        unsigned i = blockIdx.x * blockDim.x + threadIdx.x;                 \
        if (i < n) name##_body(i, p);                                       \
    }
