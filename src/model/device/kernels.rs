//! The kernels' parameter structs, as `kernels.cu` declares them (`#[repr(C)]`, field for
//! field: a pointer is a `u64` device address, `unsigned` a `u32`), and the table that names
//! each kernel for NVRTC and for the twin. `layouts_match_the_c_structs` compares every
//! field's offset with the C compiler's.

use std::ffi::c_void;

/// A device address: where a buffer (or a place in it) lives on the device; on the twin, a
/// host address.
pub type Ptr = u64;

/// The null pointer a kernel reads as "none".
pub const NULL: Ptr = 0;

/// A kernel's parameter struct: its name in `kernels.cu` and its twin's entry point.
///
/// # Safety
/// The implementing type must be laid out as `NAME_params` in `kernels.cu` (the layout test
/// checks it) and be plain data.
pub unsafe trait Kernel: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    /// `twin_NAME(const NAME_params*, const unsigned* order, unsigned n)`.
    const TWIN: unsafe extern "C" fn(*const c_void, *const u32, u32);
}

/// A field's name and offset, for the layout test.
pub type Fields = &'static [(&'static str, usize)];

macro_rules! kernels {
    ($($name:ident { $($field:ident: $ty:ty),* $(,)? })*) => {
        pub mod params {
            use super::Ptr;
            $(
                #[repr(C)]
                #[derive(Clone, Copy, Debug)]
                #[allow(non_camel_case_types)]
                pub struct $name { $(pub $field: $ty),* }
            )*
        }
        mod twin_fns {
            use std::ffi::{c_char, c_void};
            unsafe extern "C" {
                $(
                    #[link_name = concat!("twin_", stringify!($name))]
                    pub fn $name(p: *const c_void, order: *const u32, n: u32);
                )*
            }
            pub mod layouts {
                unsafe extern "C" {
                    $(
                        #[link_name = concat!("twin_layout_", stringify!($name))]
                        pub fn $name(out: *mut usize) -> usize;
                    )*
                }
            }
            pub mod fields {
                use super::c_char;
                unsafe extern "C" {
                    $(
                        #[link_name = concat!("twin_fields_", stringify!($name))]
                        pub fn $name() -> *const c_char;
                    )*
                }
            }
        }
        $(
            // SAFETY: the struct is declared field for field as in kernels.cu (tested).
            unsafe impl Kernel for params::$name {
                const NAME: &'static str = stringify!($name);
                const TWIN: unsafe extern "C" fn(*const c_void, *const u32, u32) = twin_fns::$name;
            }
        )*
        /// Every kernel: its name, Rust size and fields, and the C compiler's size and
        /// offsets and field names.
        pub fn layouts() -> Vec<(&'static str, usize, Fields, usize, Vec<usize>, String)> {
            vec![$(
                {
                    const FIELDS: Fields = &[
                        $((stringify!($field), std::mem::offset_of!(params::$name, $field))),*
                    ];
                    let mut offsets = vec![0usize; 32];
                    // SAFETY: the C side writes one offset per field, fewer than 32.
                    let size = unsafe { twin_fns::layouts::$name(offsets.as_mut_ptr()) };
                    offsets.truncate(FIELDS.len());
                    // SAFETY: a static NUL-terminated string.
                    let names = unsafe { std::ffi::CStr::from_ptr(twin_fns::fields::$name()) };
                    (
                        stringify!($name),
                        std::mem::size_of::<params::$name>(),
                        FIELDS,
                        size,
                        offsets,
                        names.to_string_lossy().into_owned(),
                    )
                }
            ),*]
        }
    };
}

kernels! {
    fill { x: Ptr, value: f32 }
    fill2 { x: Ptr, first: u32, a: f32, b: f32 }
    add { out: Ptr, a: Ptr, b: Ptr }
    mul { x: Ptr, s: Ptr }
    bias_act { y: Ptr, bias: Ptr, slope: Ptr, cols: u32, act: u32, leak: f32 }
    colsum { out: Ptr, x: Ptr, rows: u32, cols: u32 }
    im2col {
        out: Ptr, input: Ptr, in_h: u32, in_w: u32, out_h: u32, out_w: u32,
        kernel: u32, stride: u32, pad: u32, c: u32,
    }
    col2im {
        out: Ptr, input: Ptr, in_h: u32, in_w: u32, out_h: u32, out_w: u32,
        kernel: u32, stride: u32, pad: u32, c: u32,
    }
    interpolate { out: Ptr, real: Ptr, fake: Ptr, eps: Ptr, cols: u32 }
    penalty_rows { g: Ptr, norm: Ptr, term: Ptr, coef: Ptr, cols: u32, rows: u32, one_sided: u32, lambda: f32 }
    scale_rows { out: Ptr, g: Ptr, coef: Ptr, cols: u32 }
    coldot { out: Ptr, a: Ptr, b: Ptr, rows: u32, cols: u32 }
    norm_stats { x: Ptr, mean: Ptr, std: Ptr, rows: u32, c: u32, eps: f32 }
    norm_apply { y: Ptr, unit: Ptr, x: Ptr, mean: Ptr, std: Ptr, gamma: Ptr, rows: u32, c: u32 }
    norm_grad_stats {
        m1: Ptr, m2: Ptr, delta: Ptr, unit: Ptr, gamma: Ptr, seed: Ptr, rows: u32, c: u32,
    }
    norm_backward {
        dx: Ptr, delta: Ptr, unit: Ptr, m1: Ptr, m2: Ptr, std: Ptr, gamma: Ptr, seed: Ptr,
        dstd: Ptr, rows: u32, c: u32,
    }
    norm_adjoint_stats {
        q1: Ptr, q2: Ptr, dstd: Ptr, dgam: Ptr, q: Ptr, unit: Ptr, d: Ptr, m1: Ptr, m2: Ptr,
        std: Ptr, gamma: Ptr, rows: u32, c: u32,
    }
    norm_adjoint_back {
        dd: Ptr, dunit: Ptr, q: Ptr, unit: Ptr, d: Ptr, q1: Ptr, q2: Ptr, m2: Ptr, std: Ptr,
        gamma: Ptr, rows: u32, c: u32,
    }
    sumsq_chunks { partial: Ptr, x: Ptr, start: Ptr, len: Ptr }
    sum_chunks { out: Ptr, partial: Ptr, first: Ptr }
    step_stats {
        scores: Ptr, norms: Ptr, terms: Ptr, sumsq: Ptr, record: Ptr, ok: Ptr,
        rows: u32, gen_rows: u32, tensors: u32, penalised: u32, step: u32, lambda: f32,
    }
    adam { p: Ptr, g: Ptr, m: Ptr, v: Ptr, ok: Ptr, lr: f32, b1: f32, b2: f32, bc1: f32, bc2: f32, eps: f32 }
    rmsprop { p: Ptr, g: Ptr, v: Ptr, ok: Ptr, lr: f32, alpha: f32, eps: f32 }
    clip { p: Ptr, ok: Ptr, c: f32 }
}

/// The activations `bias_act` applies (`ACT_*` in kernels.cu).
pub const ACT_IDENTITY: u32 = 0;
pub const ACT_LEAKY: u32 = 1;
pub const ACT_SIGMOID: u32 = 2;
pub const ACT_TANH: u32 = 3;

#[cfg(test)]
mod tests {
    #[test]
    fn layouts_match_the_c_structs() {
        let all = super::layouts();
        assert!(all.len() >= 16);
        for (name, size, fields, c_size, c_offsets, c_names) in all {
            let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
            assert_eq!(
                names.join(","),
                c_names,
                "{name}: the fields differ from kernels.cu's"
            );
            let offsets: Vec<usize> = fields.iter().map(|f| f.1).collect();
            assert_eq!(
                offsets, c_offsets,
                "{name}: field offsets differ from the C compiler's"
            );
            assert_eq!(size, c_size, "{name}: size differs from the C compiler's");
        }
    }
}
