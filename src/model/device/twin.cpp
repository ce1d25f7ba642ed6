// The CPU twin of the device kernels: kernels.cu itself, compiled by g++ (see build.rs).
#include "twin_prelude.h"
#include "kernels.cu"

// Each parameter struct's size and field offsets, for the test that compares them with the
// Rust declarations (`kernels.rs`).
#define OFFSET(s, f) out[k++] = offsetof(s, f);
#define EACH1(s, f) OFFSET(s, f)
#define EACH2(s, f, ...) OFFSET(s, f) EACH1(s, __VA_ARGS__)
#define EACH3(s, f, ...) OFFSET(s, f) EACH2(s, __VA_ARGS__)
#define EACH4(s, f, ...) OFFSET(s, f) EACH3(s, __VA_ARGS__)
#define EACH5(s, f, ...) OFFSET(s, f) EACH4(s, __VA_ARGS__)
#define EACH6(s, f, ...) OFFSET(s, f) EACH5(s, __VA_ARGS__)
#define EACH7(s, f, ...) OFFSET(s, f) EACH6(s, __VA_ARGS__)
#define EACH8(s, f, ...) OFFSET(s, f) EACH7(s, __VA_ARGS__)
#define EACH9(s, f, ...) OFFSET(s, f) EACH8(s, __VA_ARGS__)
#define EACH10(s, f, ...) OFFSET(s, f) EACH9(s, __VA_ARGS__)
#define EACH11(s, f, ...) OFFSET(s, f) EACH10(s, __VA_ARGS__)
#define EACH12(s, f, ...) OFFSET(s, f) EACH11(s, __VA_ARGS__)
#define EACH13(s, f, ...) OFFSET(s, f) EACH12(s, __VA_ARGS__)
#define EACH14(s, f, ...) OFFSET(s, f) EACH13(s, __VA_ARGS__)
#define EACH15(s, f, ...) OFFSET(s, f) EACH14(s, __VA_ARGS__)
#define EACH16(s, f, ...) OFFSET(s, f) EACH15(s, __VA_ARGS__)
#define LAYOUT(name, names, count, ...)                                              \
    extern "C" const char* twin_fields_##name() { return names; }                    \
    extern "C" size_t twin_layout_##name(size_t* out) {                              \
        size_t k = 0;                                                                \
        EACH##count(name##_params, __VA_ARGS__) return sizeof(name##_params);        \
    }
#include "layouts.h"
