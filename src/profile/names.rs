//! Kernel-name canonicalisation and the one category classifier shared by every table.

use serde::Serialize;

/// What a GPU kernel does, for grouping and for rules (overlap, fusion, layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Communication,
    Memory,
    Attention,
    #[serde(rename = "moe")]
    MoE,
    #[serde(rename = "gemm")]
    Gemm,
    Norm,
    #[serde(rename = "rope")]
    RoPE,
    Softmax,
    Activation,
    Quantize,
    Sampling,
    Elementwise,
    Other,
}

impl Category {
    /// Label used in tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Category::Communication => "communication",
            Category::Memory => "memory",
            Category::Attention => "attention",
            Category::MoE => "moe",
            Category::Gemm => "gemm",
            Category::Norm => "norm",
            Category::RoPE => "rope",
            Category::Softmax => "softmax",
            Category::Activation => "activation",
            Category::Quantize => "quantize",
            Category::Sampling => "sampling",
            Category::Elementwise => "elementwise",
            Category::Other => "other",
        }
    }

    /// All categories in table order.
    pub const ALL: [Category; 13] = [
        Category::Communication,
        Category::Memory,
        Category::Attention,
        Category::MoE,
        Category::Gemm,
        Category::Norm,
        Category::RoPE,
        Category::Softmax,
        Category::Activation,
        Category::Quantize,
        Category::Sampling,
        Category::Elementwise,
        Category::Other,
    ];

    /// Small per-element kernels that read a producer's output right away (fusion targets).
    pub fn is_pointwise(self) -> bool {
        matches!(
            self,
            Category::Norm
                | Category::RoPE
                | Category::Activation
                | Category::Quantize
                | Category::Elementwise
                | Category::Softmax
        )
    }
}

/// Ordered keyword rules: the first rule with a matching keyword wins. Keywords are
/// lowercase substrings of the raw kernel name. Order matters: attention before GEMM
/// (cuDNN SDPA names contain `wgmma`), MoE before GEMM (grouped expert GEMMs are CUTLASS),
/// quantised GEMMs before quantize.
const RULES: &[(Category, &[&str])] = &[
    (
        Category::Communication,
        &[
            "nccl",
            "allreduce",
            "all_reduce",
            "allgather",
            "all_gather",
            "reducescatter",
            "reduce_scatter",
            "alltoall",
            "all_to_all",
            "cross_device_reduce",
            "custom_ar",
            "one_shot",
            "two_shot",
            "mscclpp",
            "deep_ep",
            "deepep",
            "nvshmem",
            "lamport",
        ],
    ),
    (Category::Memory, &["memcpy", "memset"]),
    (
        Category::Attention,
        &[
            "flash",
            "fmha",
            "sdpa",
            "attention",
            "attn",
            "batchprefill",
            "batchdecode",
            "paged_kv",
            "pagedattention",
            "mla_",
            "_mla",
            "merge_state",
            "xqa",
            "decode_kernel",
            "extend_kernel",
        ],
    ),
    (
        Category::MoE,
        &[
            "moe",
            "expert",
            "groupproblemshape",
            "grouped_gemm",
            "grouped_mm",
            "groupgemm",
            "prepare_grouped_gemm",
            "topk_softmax",
            "moe_align",
            "count_and_sort",
        ],
    ),
    (
        Category::Gemm,
        &[
            "nvjet", "gemm", "cublas", "cutlass", "wgmma", "xmma", "matmul", "_mm_", "splitk",
            "marlin", "gemv", "hgemm", "sgemm", "s16816", "s1688", "bmm",
        ],
    ),
    (Category::Quantize, &["quant", "fp8", "fp4", "scaled_mm"]),
    (
        Category::Norm,
        &[
            "rmsnorm",
            "rms_norm",
            "layernorm",
            "layer_norm",
            "groupnorm",
            "group_norm",
            "batch_norm",
            "norm_kernel",
            "meanops",
            "rsqrt_kernel",
        ],
    ),
    (
        Category::RoPE,
        &["rope", "rotary", "pos_encoding", "cos_sin", "positional"],
    ),
    (Category::Softmax, &["softmax"]),
    (
        Category::Activation,
        &[
            "silu",
            "gelu",
            "swiglu",
            "geglu",
            "act_and_mul",
            "relu",
            "sigmoid",
            "tanh_kernel",
            "swish",
        ],
    ),
    (
        Category::Sampling,
        &[
            "sampling",
            "sample",
            "topk",
            "top_k",
            "top_p",
            "argmax",
            "multinomial",
            "radixsort",
            "radix_sort",
            "bitonicsort",
            "sort_kernel",
            "distribution_",
            "curand",
        ],
    ),
    (
        Category::Memory,
        &[
            "copy",
            "catarray",
            "gather",
            "scatter",
            "index_elementwise",
            "fillfunctor",
            "fill_kernel",
            "index_select",
            "indexselect",
            "embedding",
            "transpose",
            "store_kv",
            "set_kv",
            "kv_buffer",
            "reshape_and_cache",
        ],
    ),
    (
        Category::Elementwise,
        &[
            "elementwise",
            "functor",
            "reduce_kernel",
            "vectorized",
            "unrolled",
            "pointwise",
            "triton_poi",
            "triton_red",
            "triton_per",
            "_add",
            "_mul",
            "where",
        ],
    ),
];

/// Category of a kernel from its raw name, with the launching host op as a tie-breaker
/// for names that say nothing specific (generic elementwise kernels of a norm op).
pub fn classify(raw_name: &str, cpu_op: Option<&str>) -> Category {
    let lower = raw_name.to_ascii_lowercase();
    let by_name = RULES
        .iter()
        .find(|(_, kws)| kws.iter().any(|k| lower.contains(k)))
        .map(|(c, _)| *c)
        .unwrap_or(Category::Other);
    if matches!(by_name, Category::Elementwise | Category::Other) {
        if let Some(op) = cpu_op {
            let op = op.to_ascii_lowercase();
            for (cat, kws) in [
                (
                    Category::Norm,
                    &["rms_norm", "layer_norm", "rmsnorm", "layernorm"][..],
                ),
                (Category::RoPE, &["rotary", "rope"][..]),
                (Category::Activation, &["silu", "gelu", "act_and_mul"][..]),
                (Category::Quantize, &["quant"][..]),
            ] {
                if kws.iter().any(|k| op.contains(k)) {
                    return cat;
                }
            }
        }
    }
    by_name
}

/// Folds template arguments, parameter lists and addresses out of a kernel name, keeping
/// the functor/op identifiers that tell launches apart (so `MulFunctor` and `silu_kernel`
/// elementwise launches stay separate rows while their dtype/vector-width variants merge).
pub fn canonical_name(raw: &str) -> String {
    let s = raw.trim();
    if s.starts_with("Memcpy") || s.starts_with("Memset") {
        return s.to_string();
    }
    if s.starts_with("_Z") {
        return canonical_mangled(s);
    }
    let s = s.strip_prefix("void ").unwrap_or(s);
    let s = s.replace("(anonymous namespace)::", "");
    let bytes = s.as_bytes();
    let cut = bytes
        .iter()
        .position(|&b| b == b'<' || b == b'(')
        .unwrap_or(bytes.len());
    let base = fold_hex(s[..cut].trim());
    let tags = if bytes.get(cut) == Some(&b'<') {
        let end = matching_close(bytes, cut).unwrap_or(bytes.len());
        op_identifiers(&s[cut + 1..end], &base)
    } else {
        Vec::new()
    };
    if tags.is_empty() {
        base
    } else {
        format!("{base}<{}>", tags.join(", "))
    }
}

fn matching_close(bytes: &[u8], open_at: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, &b) in bytes.iter().enumerate().skip(open_at) {
        match b {
            b'<' => depth += 1,
            b'>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

const GENERIC_IDENTS: &[&str] = &[
    "gpu_kernel_impl",
    "gpu_kernel_impl_nocast",
    "elementwise_kernel",
    "vectorized_elementwise_kernel",
    "unrolled_elementwise_kernel",
    "reduce_kernel",
    "func_wrapper_t",
];

/// Identifiers naming what the kernel computes: functors, `*_kernel*`, `*Ops`, GEMM configs.
fn op_identifiers(args: &str, base: &str) -> Vec<String> {
    let base_last = base.rsplit("::").next().unwrap_or(base);
    let mut out: Vec<String> = Vec::new();
    for ident in args.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if ident.is_empty() || ident.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        let l = ident.to_ascii_lowercase();
        let op_like = l.contains("functor")
            || l.ends_with("_kernel")
            || l.ends_with("_kernel_cuda")
            || l.ends_with("_kernel_impl")
            || ident.ends_with("Ops")
            || l.contains("gemm")
            || l.contains("attention");
        if op_like
            && ident != base_last
            && !GENERIC_IDENTS.contains(&ident)
            && !out.iter().any(|o| o == ident)
        {
            out.push(ident.to_string());
            if out.len() == 2 {
                break;
            }
        }
    }
    out
}

fn fold_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("0x") {
        out.push_str(&rest[..p]);
        let tail = &rest[p + 2..];
        let n = tail.bytes().take_while(|b| b.is_ascii_hexdigit()).count();
        out.push_str(if n > 0 { "0x?" } else { "0x" });
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// Readable form of an Itanium-mangled name: its length-prefixed identifiers, the first
/// two as a path and a few informative ones as tags (`cutlass::device_kernel<GemmUniversal,
/// GroupProblemShape, ...>`).
const MANGLED_NAMESPACES: &[&str] = &[
    "gemm",
    "kernel",
    "collective",
    "detail",
    "cuda",
    "at",
    "cute",
    "cutlass",
    "device",
];

fn canonical_mangled(s: &str) -> String {
    let b = s.as_bytes();
    let mut idents: Vec<&str> = Vec::new();
    let mut i = 2;
    while i < b.len() {
        // `S5_` / `T0_` are substitutions and template parameters, not lengths.
        if b[i].is_ascii_digit() && matches!(b[i - 1], b'S' | b'T') {
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            continue;
        }
        if b[i].is_ascii_digit() && !b[i - 1].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n: usize = s[start..i].parse().unwrap_or(0);
            if n > 0 && i + n <= b.len() {
                let id = &s[i..i + n];
                if id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                    && !idents.contains(&id)
                {
                    idents.push(id);
                }
                i += n;
                continue;
            }
        }
        i += 1;
    }
    if idents.is_empty() {
        return s.to_string();
    }
    let head: Vec<&str> = idents.iter().take(2).copied().collect();
    let tags: Vec<&str> = idents
        .iter()
        .skip(2)
        .filter(|id| {
            let l = id.to_ascii_lowercase();
            if MANGLED_NAMESPACES.contains(&l.as_str()) {
                return false;
            }
            l.contains("gemm")
                || l.contains("problem")
                || l.contains("kernel")
                || l.contains("sm9")
                || l.contains("sm10")
                || l.contains("attention")
                || l.contains("moe")
        })
        .take(4)
        .copied()
        .collect();
    if tags.is_empty() {
        head.join("::")
    } else {
        format!("{}<{}>", head.join("::"), tags.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_templates_but_keeps_functors() {
        let a = "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<at::native::BinaryFunctor<c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::MulFunctor<float> > >(at::TensorIteratorBase&, at::native::gpu_kernel_impl_nocast<at::native::BinaryFunctor<c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::MulFunctor<float> > > const&)::{lambda(int)#1}>(int, at::native::gpu_kernel_impl_nocast<at::native::BinaryFunctor<c10::BFloat16, c10::BFloat16, c10::BFloat16, at::native::binary_internal::MulFunctor<float> > > const&)::{lambda(int)#1})";
        assert_eq!(
            canonical_name(a),
            "at::native::elementwise_kernel<BinaryFunctor, MulFunctor>"
        );
        let f = a.replace("c10::BFloat16", "float");
        assert_eq!(canonical_name(&f), canonical_name(a));
        assert_eq!(
            canonical_name(
                "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
            ),
            "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"
        );
        assert_eq!(
            canonical_name("Memcpy DtoD (Device -> Device)"),
            "Memcpy DtoD (Device -> Device)"
        );
        assert_eq!(canonical_name("k<0x7f00ab>(float*)"), "k");
        assert_eq!(canonical_name("kern_0x7f00ab"), "kern_0x?");
    }

    #[test]
    fn mangled_cutlass_names_are_readable() {
        let m = "_ZN7cutlass13device_kernelIN2at4cuda6detail25enable_3x_kernel_for_sm9xINS_4gemm6kernel13GemmUniversalINS5_17GroupProblemShapeIN4cute5tupleIJiiiEEEEENS5_10collectiveEEEEEvNT_6ParamsE";
        let c = canonical_name(m);
        assert!(c.starts_with("cutlass::device_kernel<"), "{c}");
        assert!(c.contains("GroupProblemShape"), "{c}");
    }

    #[test]
    fn classifier_rules() {
        assert_eq!(
            classify("nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_TNT", None),
            Category::Gemm
        );
        assert_eq!(
            classify(
                "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7",
                None
            ),
            Category::Attention
        );
        assert_eq!(
            classify("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(x)", None),
            Category::Communication
        );
        assert_eq!(
            classify(
                "void cutlass::Kernel2<cutlass_80_simt_sgemm_128x32_8x5_nn_align1>(x)",
                None
            ),
            Category::Gemm
        );
        assert_eq!(classify("fused_add_rmsnorm_kernel", None), Category::Norm);
        assert_eq!(
            classify(
                "void at::native::vectorized_elementwise_kernel<4, at::native::rsqrt_kernel_cuda>",
                None
            ),
            Category::Norm
        );
        assert_eq!(
            classify("act_and_mul_kernel<silu>", None),
            Category::Activation
        );
        assert_eq!(
            classify("per_token_group_quant_8bit", None),
            Category::Quantize
        );
        assert_eq!(classify("fused_moe_kernel", None), Category::MoE);
        assert_eq!(classify("Memset (Device)", None), Category::Memory);
        assert_eq!(
            classify("some_pointwise_thing", Some("aten::rms_norm")),
            Category::Norm
        );
        assert_eq!(
            classify("some_pointwise_thing", None),
            Category::Elementwise
        );
        assert_eq!(
            classify("mystery", Some("sgl_kernel::rmsnorm")),
            Category::Norm
        );
        assert_eq!(classify("mystery", None), Category::Other);
    }
}
