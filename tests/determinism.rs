//! Same input and settings, byte-identical output: whatever the thread count and the
//! input order.

use crate::util::*;

/// A corpus with many near-duplicate groups, written in a given order.
fn corpus(order: &[usize]) -> String {
    let bases = [RATE, STORM, RATE_COPY, STORM_COPY];
    let mut records = Vec::new();
    for i in 0..400 {
        let base = bases[i % 4];
        let mut words: Vec<&str> = base.split(' ').collect();
        let n = words.len();
        words[(i * 7) % n] = "changed";
        if i % 3 == 0 {
            words.swap((i * 5) % n, (i * 11) % n);
        }
        let text = format!("{} item {}", words.join(" "), i % 37);
        records.push(
            serde_json::json!({"id": format!("doc-{i:04}"), "date": format!("2024-01-{:02}", 1 + i % 28), "text": text})
                .to_string(),
        );
    }
    order.iter().map(|&i| records[i].clone() + "\n").collect()
}

fn run(args: &[&str], input: &std::path::Path, threads: usize) -> Vec<u8> {
    let out = neardup()
        .args(args)
        .args(["--threads", &threads.to_string(), "--threshold", "0.6"])
        .arg(input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    out.stdout
}

#[test]
fn identical_across_thread_counts_and_input_orders() {
    let s = Scratch::new();
    let natural: Vec<usize> = (0..400).collect();
    let mut shuffled = natural.clone();
    // A fixed pseudo-random permutation.
    let mut state = 12345u64;
    for i in (1..shuffled.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        shuffled.swap(i, (state >> 33) as usize % (i + 1));
    }
    let a = s.write("natural.jsonl", corpus(&natural));
    let b = s.write("shuffled.jsonl", corpus(&shuffled));
    for command in [
        &["cluster"][..],
        &["pairs"],
        &["cluster", "--mode", "leader"],
        &["cluster", "--bucket-cap", "3"],
    ] {
        let reference = run(command, &a, 1);
        assert!(reference.len() > 1000, "the corpus has clusters");
        assert_eq!(run(command, &a, 2), reference, "{command:?}: 2 threads");
        assert_eq!(run(command, &a, 4), reference, "{command:?}: 4 threads");
        assert_eq!(
            run(command, &b, 3),
            reference,
            "{command:?}: shuffled input"
        );
    }
}
