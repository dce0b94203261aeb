//! Tokenizes the texts of a JSON Lines file (for profiling with callgrind or perf).
//!     cargo run --release --example profile_tokenize -- FILE.jsonl [stage]
//! stage: tokenize (default) | fingerprint
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: profile_tokenize FILE.jsonl [tokenize|fingerprint]");
    let stage = args.next().unwrap_or_else(|| "tokenize".into());
    let data = std::fs::read_to_string(path).expect("readable file");
    let fields = neardup::input::FieldNames::default();
    let texts: Vec<String> = data
        .lines()
        .filter_map(|l| neardup::input::parse_json_record(l, &fields).ok())
        .map(|r| r.text.into_owned())
        .collect();
    let started = std::time::Instant::now();
    let mut n = 0usize;
    match stage.as_str() {
        "fingerprint" => {
            let settings = neardup::PipelineBuilder::new()
                .build()
                .unwrap()
                .settings()
                .clone();
            let mut f = neardup::pipeline::Fingerprinter::new(&settings);
            for t in &texts {
                n += f.fingerprint(t).map_or(0, |fp| fp.set.len());
            }
        }
        _ => {
            let mut tokenizer = neardup::text::Tokenizer::new();
            let mut tokens = Vec::new();
            for t in &texts {
                tokens.clear();
                tokenizer.tokenize(t, &mut tokens);
                n += tokens.len();
            }
        }
    }
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{stage}: {n} items, {:.1} MB in {secs:.3} s = {:.0} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
}
