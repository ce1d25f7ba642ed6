// The device kernels, written once. NVRTC compiles this file for the GPU (after
// `gpu_prelude.h`); g++ compiles the same text for the CPU twin (after `twin_prelude.h`), which
// calls each kernel's body for every thread index in a shuffled order.
//
// Each kernel is a body `NAME_body(unsigned i, const NAME_params& p)` run for thread i in
// [0, n), and `KERNEL(NAME)`, which the preludes turn into the launcher. Parameters travel as
// one struct; `src/model/device/kernels.rs` declares the same structs (`#[repr(C)]`), and a
// test compares their field offsets with these.
//
// No kernel uses shared memory, atomics or __syncthreads: each thread writes only its own
// outputs and reads nothing another thread writes in the same launch. Sums are loops in one
// thread (a column's, a row's, a chunk's), reductions two passes, so that every result is
// the same from run to run on any device.

// x[i] = value
struct fill_params {
    float* x;
    float value;
};
__device__ void fill_body(unsigned i, const fill_params& p) { p.x[i] = p.value; }
KERNEL(fill)

// x[i] = i < first ? a : b (the score weights of a critic batch: real rows, then fake rows)
struct fill2_params {
    float* x;
    unsigned first;
    float a;
    float b;
};
__device__ void fill2_body(unsigned i, const fill2_params& p) { p.x[i] = i < p.first ? p.a : p.b; }
KERNEL(fill2)

// out[i] = a[i] + b[i] (b may be null: a copy)
struct add_params {
    float* out;
    const float* a;
    const float* b;
};
__device__ void add_body(unsigned i, const add_params& p) {
    p.out[i] = p.b ? p.a[i] + p.b[i] : p.a[i];
}
KERNEL(add)

// x[i] *= s[i]
struct mul_params {
    float* x;
    const float* s;
};
__device__ void mul_body(unsigned i, const mul_params& p) { p.x[i] *= p.s[i]; }
KERNEL(mul)

// Activations. y holds the pre-activation (without its bias) on entry and the activation on
// exit; slope (if not null) gets the activation's derivative at each element.
#define ACT_IDENTITY 0u
#define ACT_LEAKY 1u
#define ACT_SIGMOID 2u
#define ACT_TANH 3u
struct bias_act_params {
    float* y;
    const float* bias;  // one per channel (the last dimension of a row), or null
    float* slope;       // or null
    unsigned cols;      // the bias's length
    unsigned act;
    float leak;
};
__device__ void bias_act_body(unsigned i, const bias_act_params& p) {
    float z = p.bias ? p.y[i] + p.bias[i % p.cols] : p.y[i];
    float y = z, s = 1.0f;
    if (p.act == ACT_LEAKY) {
        bool positive = z > 0.0f;
        y = positive ? z : p.leak * z;
        s = positive ? 1.0f : p.leak;
    } else if (p.act == ACT_SIGMOID) {
        y = 1.0f / (1.0f + expf(-z));
        s = y * (1.0f - y);
    } else if (p.act == ACT_TANH) {
        y = tanhf(z);
        s = 1.0f - y * y;
    }
    p.y[i] = y;
    if (p.slope) p.slope[i] = s;
}
KERNEL(bias_act)

// out[c] += the sum over r of x[r, c], x row-major (rows, cols). One thread per c.
struct colsum_params {
    float* out;
    const float* x;
    unsigned rows;
    unsigned cols;
};
__device__ void colsum_body(unsigned c, const colsum_params& p) {
    float sum = 0.0f;
    for (unsigned r = 0; r < p.rows; r++) sum += p.x[(unsigned long long)r * p.cols + c];
    p.out[c] += sum;
}
KERNEL(colsum)

// A convolution's patch matrix and its adjoint, over channels-last images: an image is
// (in_h * in_w, c) values, its patch matrix (out_h * out_w, k * k * c), entry
// (output pixel, (kh * k + kw) * c + channel) the input under kernel offset (kh, kw), or 0
// where the kernel hangs over the padding. Images follow one another (a batch).
struct im2col_params {
    float* out;
    const float* input;
    unsigned in_h;
    unsigned in_w;
    unsigned out_h;
    unsigned out_w;
    unsigned kernel;
    unsigned stride;
    unsigned pad;
    unsigned c;
};
// One thread per patch matrix entry: out = im2col(input).
__device__ void im2col_body(unsigned i, const im2col_params& p) {
    unsigned kkc = p.kernel * p.kernel * p.c;
    unsigned row = i / kkc, col = i % kkc;
    unsigned out_pixels = p.out_h * p.out_w;
    unsigned image = row / out_pixels, pixel = row % out_pixels;
    unsigned oh = pixel / p.out_w, ow = pixel % p.out_w;
    unsigned tap = col / p.c, ch = col % p.c;
    int ih = (int)(oh * p.stride + tap / p.kernel) - (int)p.pad;
    int iw = (int)(ow * p.stride + tap % p.kernel) - (int)p.pad;
    bool inside = ih >= 0 && iw >= 0 && ih < (int)p.in_h && iw < (int)p.in_w;
    unsigned long long at =
        ((unsigned long long)image * p.in_h * p.in_w + (unsigned)ih * p.in_w + (unsigned)iw) * p.c + ch;
    p.out[i] = inside ? p.input[at] : 0.0f;
}
KERNEL(im2col)

// One thread per image entry: out = col2im(input), the adjoint of im2col, gathered: the sum
// of the patch entries that read this entry.
struct col2im_params {
    float* out;
    const float* input;
    unsigned in_h;
    unsigned in_w;
    unsigned out_h;
    unsigned out_w;
    unsigned kernel;
    unsigned stride;
    unsigned pad;
    unsigned c;
};
__device__ void col2im_body(unsigned i, const col2im_params& p) {
    unsigned in_pixels = p.in_h * p.in_w;
    unsigned ch = i % p.c, pixel = (i / p.c) % in_pixels, image = i / p.c / in_pixels;
    int ih = (int)(pixel / p.in_w), iw = (int)(pixel % p.in_w);
    unsigned kkc = p.kernel * p.kernel * p.c;
    float sum = 0.0f;
    for (unsigned kh = 0; kh < p.kernel; kh++) {
        int h = ih + (int)p.pad - (int)kh;
        if (h < 0 || h % (int)p.stride != 0 || h / (int)p.stride >= (int)p.out_h) continue;
        for (unsigned kw = 0; kw < p.kernel; kw++) {
            int w = iw + (int)p.pad - (int)kw;
            if (w < 0 || w % (int)p.stride != 0 || w / (int)p.stride >= (int)p.out_w) continue;
            unsigned long long row =
                (unsigned long long)image * p.out_h * p.out_w + (unsigned)(h / (int)p.stride) * p.out_w +
                (unsigned)(w / (int)p.stride);
            sum += p.input[row * kkc + (kh * p.kernel + kw) * p.c + ch];
        }
    }
    p.out[i] = sum;
}
KERNEL(col2im)

// out[r, c] = eps[r] real[r, c] + (1 - eps[r]) fake[r, c]: the penalty's points x_hat.
struct interpolate_params {
    float* out;
    const float* real;
    const float* fake;
    const float* eps;
    unsigned cols;
};
__device__ void interpolate_body(unsigned i, const interpolate_params& p) {
    float e = p.eps[i / p.cols];
    p.out[i] = e * p.real[i] + (1.0f - e) * p.fake[i];
}
KERNEL(interpolate)

// Per row r of the input gradient g (rows, cols): its norm, the penalty term (n - 1)^2
// (one-sided: max(0, n - 1)^2), and coef[r] = dP_weighted/dg[r, :] / g[r, :], the factor that
// turns the row into the gradient of lambda * mean(term) w.r.t. it.
struct penalty_rows_params {
    const float* g;
    float* norm;
    float* term;
    float* coef;
    unsigned cols;
    unsigned rows;
    unsigned one_sided;
    float lambda;
};
__device__ void penalty_rows_body(unsigned r, const penalty_rows_params& p) {
    float sq = 0.0f;
    for (unsigned c = 0; c < p.cols; c++) {
        float v = p.g[(unsigned long long)r * p.cols + c];
        sq += v * v;
    }
    float n = sqrtf(sq);
    float d = n - 1.0f;
    if (p.one_sided && d < 0.0f) d = 0.0f;
    p.norm[r] = n;
    p.term[r] = d * d;
    p.coef[r] = n > 0.0f ? p.lambda * 2.0f * d / ((float)p.rows * n) : 0.0f;
}
KERNEL(penalty_rows)

// out[r, c] = coef[r] g[r, c]
struct scale_rows_params {
    float* out;
    const float* g;
    const float* coef;
    unsigned cols;
};
__device__ void scale_rows_body(unsigned i, const scale_rows_params& p) {
    p.out[i] = p.coef[i / p.cols] * p.g[i];
}
KERNEL(scale_rows)

// out[c] += the sum over r of a[r, c] b[r, c], row-major (rows, cols). One thread per c.
struct coldot_params {
    float* out;
    const float* a;
    const float* b;
    unsigned rows;
    unsigned cols;
};
__device__ void coldot_body(unsigned c, const coldot_params& p) {
    float sum = 0.0f;
    for (unsigned r = 0; r < p.rows; r++) {
        unsigned long long at = (unsigned long long)r * p.cols + c;
        sum += p.a[at] * p.b[at];
    }
    p.out[c] += sum;
}
KERNEL(coldot)

// Normalisation per channel over groups of `rows` consecutive rows of c channels (a group an
// image, or the whole batch). One thread per (group, channel): the mean, and
// std = sqrt(biased variance + eps). A batch norm's group is the whole batch's pixels (16,384
// rows at batch 64 and 16x16): its sums run in double, since the backward pass subtracts the
// means from values of about their size (measured on the twin: one 32x32 generator gradient
// of three off the CPU's by 1.7e-3 with float sums, 2.2e-5 with these).
struct norm_stats_params {
    const float* x;
    float* mean;
    float* std;
    unsigned rows;
    unsigned c;
    float eps;
};
__device__ void norm_stats_body(unsigned t, const norm_stats_params& p) {
    const float* at = p.x + (unsigned long long)(t / p.c) * p.rows * p.c + t % p.c;
    double sum = 0.0;
    for (unsigned r = 0; r < p.rows; r++) sum += (double)at[(unsigned long long)r * p.c];
    float mean = (float)(sum / (double)p.rows);
    double sq = 0.0;
    for (unsigned r = 0; r < p.rows; r++) {
        double d = (double)(at[(unsigned long long)r * p.c] - mean);
        sq += d * d;
    }
    p.mean[t] = mean;
    p.std[t] = sqrtf((float)(sq / (double)p.rows) + p.eps);
}
KERNEL(norm_stats)

// unit = (x - mean) / std and y = gamma unit, element by element.
struct norm_apply_params {
    float* y;
    float* unit;
    const float* x;
    const float* mean;
    const float* std;
    const float* gamma;
    unsigned rows;
    unsigned c;
};
__device__ void norm_apply_body(unsigned i, const norm_apply_params& p) {
    unsigned ch = i % p.c;
    unsigned t = (i / p.c / p.rows) * p.c + ch;
    float u = (p.x[i] - p.mean[t]) / p.std[t];
    p.unit[i] = u;
    p.y[i] = p.gamma[ch] * u;
}
KERNEL(norm_apply)

// The backward pass's means per (group, channel), du = gamma delta + seed (seed, if not
// null: a gradient w.r.t. the standardised values from elsewhere, the penalty's): m1 =
// mean(du), m2 = mean(du unit).
struct norm_grad_stats_params {
    float* m1;
    float* m2;
    const float* delta;
    const float* unit;
    const float* gamma;
    const float* seed;
    unsigned rows;
    unsigned c;
};
__device__ void norm_grad_stats_body(unsigned t, const norm_grad_stats_params& p) {
    unsigned long long base = (unsigned long long)(t / p.c) * p.rows * p.c + t % p.c;
    float g = p.gamma[t % p.c];
    double s1 = 0.0, s2 = 0.0;
    for (unsigned r = 0; r < p.rows; r++) {
        unsigned long long at = base + (unsigned long long)r * p.c;
        float du = g * p.delta[at];
        if (p.seed) du += p.seed[at];
        s1 += (double)du;
        s2 += (double)(du * p.unit[at]);
    }
    p.m1[t] = (float)(s1 / (double)p.rows);
    p.m2[t] = (float)(s2 / (double)p.rows);
}
KERNEL(norm_grad_stats)

// dx = (du - m1 - unit m2) / std + dstd unit / rows, du = gamma delta + seed, element by
// element (seed and dstd, the gradient w.r.t. the groups' std, may be null).
struct norm_backward_params {
    float* dx;
    const float* delta;
    const float* unit;
    const float* m1;
    const float* m2;
    const float* std;
    const float* gamma;
    const float* seed;
    const float* dstd;
    unsigned rows;
    unsigned c;
};
__device__ void norm_backward_body(unsigned i, const norm_backward_params& p) {
    unsigned ch = i % p.c;
    unsigned t = (i / p.c / p.rows) * p.c + ch;
    float du = p.gamma[ch] * p.delta[i];
    if (p.seed) du += p.seed[i];
    float dx = (du - p.m1[t] - p.unit[i] * p.m2[t]) / p.std[t];
    if (p.dstd) dx += p.dstd[t] * p.unit[i] / (float)p.rows;
    p.dx[i] = dx;
}
KERNEL(norm_backward)

// The backward pass of the normalisation's adjoint (the penalty's input-gradient graph runs
// norm_grad_stats and norm_backward on d, the gradient arriving from above: out = (gamma d -
// m1 - unit m2) / std). Given q = dL/d out, per (group, channel): q1 = mean(q),
// q2 = mean(q unit), dstd = dL/d std = -sum(q out) / std, and dgam, this group's share of
// dL/d gamma, sum(d (q - q1 - unit q2)) / std. Sums in double, as the statistics'.
struct norm_adjoint_stats_params {
    float* q1;
    float* q2;
    float* dstd;
    float* dgam;
    const float* q;
    const float* unit;
    const float* d;
    const float* m1;
    const float* m2;
    const float* std;
    const float* gamma;
    unsigned rows;
    unsigned c;
};
__device__ void norm_adjoint_stats_body(unsigned t, const norm_adjoint_stats_params& p) {
    unsigned long long base = (unsigned long long)(t / p.c) * p.rows * p.c + t % p.c;
    float g = p.gamma[t % p.c];
    double sq = 0.0, squ = 0.0, sqo = 0.0, sdq = 0.0, sd = 0.0, sdu = 0.0;
    for (unsigned r = 0; r < p.rows; r++) {
        unsigned long long at = base + (unsigned long long)r * p.c;
        double q = p.q[at], u = p.unit[at], d = p.d[at];
        sq += q;
        squ += q * u;
        sqo += q * ((double)(g * p.d[at]) - p.m1[t] - u * p.m2[t]);
        sdq += d * q;
        sd += d;
        sdu += d * u;
    }
    double n = (double)p.rows, s = (double)p.std[t];
    double q1 = sq / n, q2 = squ / n;
    p.q1[t] = (float)q1;
    p.q2[t] = (float)q2;
    p.dstd[t] = (float)(-sqo / (s * s));
    p.dgam[t] = (float)((sdq - q1 * sd - q2 * sdu) / s);
}
KERNEL(norm_adjoint_stats)

// Element by element, with norm_adjoint_stats' means: dd = dL/d d = gamma (q - q1 - unit q2)
// / std, and dunit = dL/d unit = -(q m2 + gamma d q2) / std.
struct norm_adjoint_back_params {
    float* dd;
    float* dunit;
    const float* q;
    const float* unit;
    const float* d;
    const float* q1;
    const float* q2;
    const float* m2;
    const float* std;
    const float* gamma;
    unsigned rows;
    unsigned c;
};
__device__ void norm_adjoint_back_body(unsigned i, const norm_adjoint_back_params& p) {
    unsigned ch = i % p.c;
    unsigned t = (i / p.c / p.rows) * p.c + ch;
    float g = p.gamma[ch], q = p.q[i], u = p.unit[i];
    p.dd[i] = g * (q - p.q1[t] - u * p.q2[t]) / p.std[t];
    p.dunit[i] = -(q * p.m2[t] + g * p.d[i] * p.q2[t]) / p.std[t];
}
KERNEL(norm_adjoint_back)

// The first pass of the sums of squares of a net's gradient, tensor by tensor: chunk j covers
// x[start[j] .. start[j] + len[j]] (one tensor's, never two), and partial[j] gets its sum of
// squares. A NaN or infinity stays in the sum.
struct sumsq_chunks_params {
    float* partial;
    const float* x;
    const unsigned* start;
    const unsigned* len;
};
__device__ void sumsq_chunks_body(unsigned j, const sumsq_chunks_params& p) {
    float sum = 0.0f;
    const float* at = p.x + p.start[j];
    for (unsigned k = 0; k < p.len[j]; k++) sum += at[k] * at[k];
    p.partial[j] = sum;
}
KERNEL(sumsq_chunks)

// The second pass: out[t] = the sum of tensor t's chunks, first[t] .. first[t + 1].
struct sum_chunks_params {
    float* out;
    const float* partial;
    const unsigned* first;
};
__device__ void sum_chunks_body(unsigned t, const sum_chunks_params& p) {
    float sum = 0.0f;
    for (unsigned j = p.first[t]; j < p.first[t + 1]; j++) sum += p.partial[j];
    p.out[t] = sum;
}
KERNEL(sum_chunks)

// The gate and the figures of one step, in one thread. ok[0] is 1 while every step so far
// was finite; the first step that is not sets it to 0, ok[1] to what failed (1 the loss, 2 a
// gradient) and ok[2] to the step's number; the optimizer kernels then apply nothing.
//
// A critic step (rows > 0): scores holds D(real) for `rows` rows, then D(fake) for as many;
// norms and terms the penalty's rows (or null). record gets
//   [loss, d_real, d_fake, penalty, lambda * penalty, mean norm, std norm, applied].
// A generator step (rows = 0, gen_rows > 0): record gets [-mean D(G(z)), applied].
struct step_stats_params {
    const float* scores;
    const float* norms;
    const float* terms;
    const float* sumsq;  // the gradient's sum of squares, per tensor
    float* record;
    float* ok;
    unsigned rows;
    unsigned gen_rows;
    unsigned tensors;
    unsigned penalised;  // whether lambda * penalty is in the loss
    unsigned step;
    float lambda;
};
__device__ void step_stats_body(unsigned, const step_stats_params& p) {
    float loss;
    unsigned at = 0;
    if (p.rows > 0) {
        float real = 0.0f, fake = 0.0f, penalty = 0.0f;
        for (unsigned r = 0; r < p.rows; r++) real += p.scores[r];
        for (unsigned r = 0; r < p.rows; r++) fake += p.scores[p.rows + r];
        real /= (float)p.rows;
        fake /= (float)p.rows;
        double mean = 0.0, var = 0.0;
        if (p.norms) {
            for (unsigned r = 0; r < p.rows; r++) penalty += p.terms[r];
            penalty /= (float)p.rows;
            for (unsigned r = 0; r < p.rows; r++) mean += (double)p.norms[r];
            mean /= (double)p.rows;
            for (unsigned r = 0; r < p.rows; r++) {
                double d = (double)p.norms[r] - mean;
                var += d * d;
            }
            var /= (double)p.rows;
        }
        float weighted = p.penalised ? p.lambda * penalty : 0.0f;
        loss = fake - real + weighted;
        p.record[0] = loss;
        p.record[1] = real;
        p.record[2] = fake;
        p.record[3] = penalty;
        p.record[4] = weighted;
        p.record[5] = (float)mean;
        p.record[6] = (float)sqrt(var);
        at = 7;
    } else {
        float sum = 0.0f;
        for (unsigned r = 0; r < p.gen_rows; r++) sum += p.scores[r];
        loss = -(sum / (float)p.gen_rows);
        p.record[0] = loss;
        at = 1;
    }
    unsigned failed = 0;
    if (!isfinite(loss)) failed = 1;
    for (unsigned t = 0; t < p.tensors && !failed; t++)
        if (!isfinite(p.sumsq[t])) failed = 2;
    bool apply = p.ok[0] != 0.0f && !failed;
    if (p.ok[0] != 0.0f && failed) {
        p.ok[0] = 0.0f;
        p.ok[1] = (float)failed;
        p.ok[2] = (float)p.step;
    }
    p.record[at] = apply ? 1.0f : 0.0f;
}
KERNEL(step_stats)

// Adam, element by element, as the CPU optimizer computes it; nothing while ok[0] is 0.
struct adam_params {
    float* p;
    const float* g;
    float* m;
    float* v;
    const float* ok;
    float lr;
    float b1;
    float b2;
    float bc1;  // 1 - b1^t
    float bc2;  // 1 - b2^t
    float eps;
};
__device__ void adam_body(unsigned i, const adam_params& p) {
    if (p.ok[0] == 0.0f) return;
    float g = p.g[i];
    float m = p.b1 * p.m[i] + (1.0f - p.b1) * g;
    float v = p.b2 * p.v[i] + (1.0f - p.b2) * g * g;
    p.m[i] = m;
    p.v[i] = v;
    float m_hat = m / p.bc1, v_hat = v / p.bc2;
    p.p[i] -= p.lr * m_hat / (sqrtf(v_hat) + p.eps);
}
KERNEL(adam)

// RMSprop (PyTorch's, no momentum); nothing while ok[0] is 0.
struct rmsprop_params {
    float* p;
    const float* g;
    float* v;
    const float* ok;
    float lr;
    float alpha;
    float eps;
};
__device__ void rmsprop_body(unsigned i, const rmsprop_params& p) {
    if (p.ok[0] == 0.0f) return;
    float g = p.g[i];
    float v = p.alpha * p.v[i] + (1.0f - p.alpha) * g * g;
    p.v[i] = v;
    p.p[i] -= p.lr * g / (sqrtf(v) + p.eps);
}
KERNEL(rmsprop)

// Weight clipping: p[i] into [-c, c]; nothing while ok[0] is 0.
struct clip_params {
    float* p;
    const float* ok;
    float c;
};
__device__ void clip_body(unsigned i, const clip_params& p) {
    if (p.ok[0] == 0.0f) return;
    p.p[i] = fminf(fmaxf(p.p[i], -p.c), p.c);
}
KERNEL(clip)
