//! "Did you mean" suggestions for mistyped keys and names.

/// The closest candidate to `input` by edit distance, when it is close enough to be a
/// plausible typo (distance at most a third of the longer word, and at least 1 allowed).
/// Underscores, dashes and dots are compared as equal so `gpu_count` finds `gpu.count`.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| -> String {
        s.chars()
            .map(|c| if matches!(c, '-' | '.' | ' ') { '_' } else { c })
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = norm(input);
    candidates
        .iter()
        .map(|c| (edit_distance(&wanted, &norm(c)), *c))
        .filter(|(d, c)| {
            let longest = wanted.chars().count().max(c.chars().count());
            *d <= (longest / 3).max(1)
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Formats ` (did you mean `x`?)` or nothing.
pub fn hint(input: &str, candidates: &[&str]) -> String {
    did_you_mean(input, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// Edit distance over characters where swapping two neighbours counts as one edit
/// (optimal string alignment), since transposed letters are the commonest typo.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["model", "max_rounds", "gpu.count", "tokenizer"];
        assert_eq!(did_you_mean("modle", &keys), Some("model"));
        assert_eq!(did_you_mean("max_round", &keys), Some("max_rounds"));
        assert_eq!(did_you_mean("gpu_count", &keys), Some("gpu.count"));
        assert_eq!(did_you_mean("Tokeniser", &keys), Some("tokenizer"));
        assert_eq!(did_you_mean("banana", &keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("modle", "model"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(hint("modle", &keys), " (did you mean `model`?)");
        assert_eq!(hint("zzz", &keys), "");
    }
}
