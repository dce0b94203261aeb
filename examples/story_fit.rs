//! Fits the story-level decision on labelled pairs and reports cross-validated figures.
//!
//!     cargo run --release --example story_fit -- ../shared/data/bbc-news.jsonl \
//!         ../shared/data/labels/bbc-same-story.jsonl [--folds 5] [--l2 0.1] [--seed 7]
//!         [--use name,name,...] [--veto SLOTS,FRACTION] [--lead-veto SHARE]
//!         [--dump pairs.jsonl]
//!
//! `--more-seeds N` repeats the cross-validation with N more fold assignments (seeds
//! `seed + 1…`) and prints the mean, to see how much one assignment's figure is luck.
//! `--linkage average|majority` chooses how story clusters merge.
//! `--use` picks the components the model may use (default: those the committed model
//! uses); `--veto 0,0` turns the template-slot veto off, `--lead-veto 0` the lead veto
//! (default: the committed model's vetoes); `--dump` writes every labelled pair's
//! components as JSON lines for analysis.
//!
//! Labels are JSON Lines with `a`, `b`, `same_story` and optionally `label` and
//! `confidence` (as in `bbc-same-story.jsonl`). The corpus is read once at the story level.
//!
//! Cross-validation keeps documents apart: pairs are grouped by connected components over
//! the labelled pairs and over near-copies among the labelled documents (a copy of a test
//! document in the training folds would leak), and whole groups go to one fold. For each
//! fold the model is fitted on the other folds, then the WHOLE corpus is clustered with it
//! and each test pair is judged by whether its two documents share a story cluster — the
//! figure the acceptance asks for. Pairwise decisions are reported too.
//!
//! Last, the model is fitted on every pair and printed as the Rust constant committed in
//! `src/story/model.rs`, with its in-sample cluster-level figures (optimistic by design).

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;

use neardup::cluster::UnionFind;
use neardup::input::InputSpec;
use neardup::progress::Silent;
use neardup::story::model::{self, Example, FitSettings};
use neardup::story::{self, COMPONENT_NAMES, Component, Model, StoryOutcome};
use neardup::{Level, Outcome, PipelineBuilder};

struct Labelled {
    a: u32,
    b: u32,
    same: bool,
    label: String,
    high: bool,
}

fn main() -> ExitCode {
    let mut positional = Vec::new();
    let (mut folds, mut seed, mut extra_seeds) = (5usize, 7u64, 0u64);
    let committed = Model::fitted();
    let mut settings = FitSettings {
        used: committed.weights.map(|w| w != 0.0),
        l2: 0.1,
        veto_slots: committed.veto_slots,
        veto_fraction: committed.veto_fraction,
        veto_lead: committed.veto_lead,
    };
    let mut dump = None;
    let mut explain = false;
    let mut linkage = story::Linkage::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("flag needs a value");
        match a.as_str() {
            "--folds" => folds = value().parse().expect("folds"),
            "--l2" => settings.l2 = value().parse().expect("l2"),
            "--seed" => seed = value().parse().expect("seed"),
            "--more-seeds" => extra_seeds = value().parse().expect("more seeds"),
            "--use" => {
                settings.used = [false; COMPONENT_NAMES.len()];
                for name in value().split(',') {
                    let c = Component::from_name(name)
                        .unwrap_or_else(|| panic!("unknown component {name}"));
                    settings.used[c as usize] = true;
                }
            }
            "--veto" => {
                let v = value();
                let (n, f) = v.split_once(',').expect("--veto SLOTS,FRACTION");
                settings.veto_slots = n.parse().expect("veto slots");
                settings.veto_fraction = f.parse().expect("veto fraction");
            }
            "--lead-veto" => settings.veto_lead = value().parse().expect("lead veto share"),
            "--dump" => dump = Some(value()),
            "--explain" => explain = true,
            "--linkage" => {
                linkage = match value().as_str() {
                    "average" => story::Linkage::Average,
                    "majority" => story::Linkage::Majority,
                    other => panic!("unknown linkage {other}"),
                }
            }
            _ => positional.push(a),
        }
    }
    let l2 = settings.l2;
    let [corpus_path, labels_path] = &positional[..] else {
        eprintln!("usage: story_fit CORPUS LABELS [--folds K] [--l2 X] [--seed S]");
        return ExitCode::from(2);
    };
    let pipeline = PipelineBuilder::new()
        .level(Level::Story)
        .story(story::StorySettings {
            linkage,
            ..Default::default()
        })
        .build()
        .expect("settings");
    let mut outcome = pipeline
        .run(&[InputSpec::from(corpus_path.as_str())], &Silent)
        .expect("reading the corpus");
    let story = outcome.story.take().expect("story level");
    let by_id: HashMap<&str, u32> = (0..outcome.corpus.len() as u32)
        .map(|d| (outcome.corpus.id(d), d))
        .collect();
    let mut pairs = Vec::new();
    for (line, text) in std::fs::read_to_string(labels_path)
        .expect("reading labels")
        .lines()
        .enumerate()
    {
        let v: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{labels_path}:{}: {e}", line + 1));
        let doc = |k: &str| {
            let id = v[k].as_str().expect("a and b are strings");
            *by_id
                .get(id)
                .unwrap_or_else(|| panic!("{labels_path}:{}: unknown id {id}", line + 1))
        };
        pairs.push(Labelled {
            a: doc("a"),
            b: doc("b"),
            same: v["same_story"].as_bool().expect("same_story is a bool"),
            label: v["label"].as_str().unwrap_or("").to_string(),
            high: v["confidence"].as_str() != Some("low"),
        });
    }
    let examples: Vec<Example> = pairs
        .iter()
        .map(|p| Example {
            components: story::pair_components(
                &outcome.corpus,
                &story.docs,
                &story.stats,
                p.a,
                p.b,
            )
            .expect("shingle sets"),
            same: p.same,
        })
        .collect();

    if let Some(path) = &dump {
        let mut out = String::new();
        for (p, e) in pairs.iter().zip(&examples) {
            let mut record = serde_json::Map::new();
            record.insert("a".into(), outcome.corpus.id(p.a).into());
            record.insert("b".into(), outcome.corpus.id(p.b).into());
            record.insert("same".into(), p.same.into());
            record.insert("label".into(), p.label.clone().into());
            record.insert("high".into(), p.high.into());
            for (name, x) in COMPONENT_NAMES.iter().zip(e.components.0) {
                record.insert((*name).into(), x.into());
            }
            out.push_str(&serde_json::Value::Object(record).to_string());
            out.push('\n');
        }
        std::fs::write(path, out).expect("writing the dump");
    }
    let mut story = Some(story);
    let mut cross_validate = |seed: u64| {
        let fold_of = assign_folds(
            &outcome,
            story.as_ref().expect("returned"),
            &pairs,
            folds,
            seed,
        );
        let mut cv_cluster = vec![false; pairs.len()];
        let mut cv_pairwise = vec![false; pairs.len()];
        for k in 0..folds {
            let train: Vec<Example> = (0..pairs.len())
                .filter(|&i| fold_of[i] != k)
                .map(|i| examples[i])
                .collect();
            let m = model::fit(&train, &settings);
            let taken = story
                .take()
                .expect("the story outcome is returned after each run");
            let (clustered, back) = cluster_with(&outcome, taken, m);
            story = Some(back);
            for i in (0..pairs.len()).filter(|&i| fold_of[i] == k) {
                cv_cluster[i] = clustered(pairs[i].a, pairs[i].b);
                cv_pairwise[i] = m.same_story(&examples[i].components);
            }
        }
        (cv_cluster, cv_pairwise)
    };
    let (cv_cluster, cv_pairwise) = cross_validate(seed);
    if explain {
        println!("== errors (seed {seed}): cluster-level decision / pairwise decision ==");
        for (i, p) in pairs.iter().enumerate() {
            if cv_cluster[i] != p.same || cv_pairwise[i] != p.same {
                println!(
                    "   {} {} {:<8} {} cluster {:<5} pair {:<5}",
                    outcome.corpus.id(p.a),
                    outcome.corpus.id(p.b),
                    p.label,
                    if p.high { "high" } else { "low " },
                    cv_cluster[i],
                    cv_pairwise[i]
                );
            }
        }
    }
    if extra_seeds > 0 {
        let all: Vec<&Labelled> = pairs.iter().collect();
        let mut sums = [0.0; 3];
        for s in seed..=seed + extra_seeds {
            let (cluster, _) = cross_validate(s);
            let (p, r, f, ..) = prf(&all, &cluster);
            println!("   seed {s:>3}: cluster level P {p:.3}  R {r:.3}  F1 {f:.3}");
            for (sum, x) in sums.iter_mut().zip([p, r, f]) {
                *sum += x / (extra_seeds + 1) as f64;
            }
        }
        let [p, r, f] = sums;
        println!(
            "   mean over {} seeds: P {p:.3}  R {r:.3}  F1 {f:.3}",
            extra_seeds + 1
        );
    }
    println!("== cross-validated ({folds} folds, grouped by document; l2 {l2}; seed {seed}) ==");
    report(
        "cluster level (same story cluster, whole corpus in one run)",
        &pairs,
        &cv_cluster,
    );
    report("pairwise decision", &pairs, &cv_pairwise);

    let final_model = model::fit(&examples, &settings);
    let story = story.expect("the story outcome is returned after each run");
    let (clustered, _) = cluster_with(&outcome, story, final_model);
    let in_sample: Vec<bool> = pairs.iter().map(|p| clustered(p.a, p.b)).collect();
    println!(
        "== fitted on all {} pairs (in-sample, optimistic) ==",
        pairs.len()
    );
    report("cluster level", &pairs, &in_sample);
    println!("== the model (paste into src/story/model.rs) ==");
    println!("const FITTED: Model = Model {{");
    println!("    bias: {:.4},", final_model.bias);
    println!("    weights: [");
    for (w, name) in final_model.weights.iter().zip(COMPONENT_NAMES) {
        println!("        {w:.4}, // {name}");
    }
    println!("    ],");
    println!("    threshold: {:.2},", final_model.threshold);
    println!("    veto_slots: {},", final_model.veto_slots);
    println!("    veto_fraction: {:.2},", final_model.veto_fraction);
    println!("    veto_lead: {:.2},", final_model.veto_lead);
    println!("}};");
    ExitCode::SUCCESS
}

/// Clusters the whole corpus with `model`; returns "are a and b in one cluster" and the
/// story outcome's parts for the next run.
fn cluster_with(
    outcome: &Outcome,
    story: StoryOutcome,
    model: Model,
) -> (impl Fn(u32, u32) -> bool + use<>, StoryOutcome) {
    let settings = story::StorySettings {
        model,
        ..outcome.settings.story.clone()
    };
    let s = &outcome.settings;
    let found = story::run(
        &outcome.corpus,
        story.docs,
        story.stats,
        &settings,
        s.seed,
        s.representative,
        &outcome.rank,
        &neardup::progress::Silent,
    )
    .expect("story run");
    let mut cluster_of = HashMap::new();
    for (i, c) in found.clusters.iter().enumerate() {
        for &d in &c.members {
            cluster_of.insert(d, i);
        }
    }
    let same = move |a: u32, b: u32| match (cluster_of.get(&a), cluster_of.get(&b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    };
    (same, found)
}

/// Folds by connected components of labelled pairs and near-copies among their documents.
fn assign_folds(
    outcome: &Outcome,
    story: &StoryOutcome,
    pairs: &[Labelled],
    folds: usize,
    seed: u64,
) -> Vec<usize> {
    let mut uf = UnionFind::new(outcome.corpus.len());
    for p in pairs {
        uf.union(p.a, p.b);
    }
    let mut docs: Vec<u32> = pairs.iter().flat_map(|p| [p.a, p.b]).collect();
    docs.sort_unstable();
    docs.dedup();
    for (i, &x) in docs.iter().enumerate() {
        for &y in &docs[i + 1..] {
            let c = story::pair_components(&outcome.corpus, &story.docs, &story.stats, x, y)
                .expect("shingle sets");
            if c.shingle_containment() >= 0.5 {
                uf.union(x, y);
            }
        }
    }
    // Groups in order of their smallest id, dealt to folds in a seeded shuffle.
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    let mut first_rank: HashMap<u32, u32> = HashMap::new();
    for (i, p) in pairs.iter().enumerate() {
        let root = uf.find(p.a);
        let r = outcome.rank[p.a as usize].min(outcome.rank[p.b as usize]);
        let e = first_rank.entry(root).or_insert(r);
        *e = (*e).min(r);
        groups.entry(root).or_default().push(i);
    }
    let mut order: Vec<(u64, u32)> = groups
        .keys()
        .map(|&root| {
            let r = u64::from(first_rank[&root]);
            (
                xxhash_rust::xxh3::xxh3_64_with_seed(&r.to_le_bytes(), seed),
                root,
            )
        })
        .collect();
    order.sort_unstable();
    let mut fold_of = vec![0; pairs.len()];
    let mut sizes = vec![0usize; folds];
    // Largest groups first into the emptiest fold keeps folds balanced.
    let mut by_size: Vec<(u64, u32)> = order;
    by_size.sort_by_key(|&(h, root)| (std::cmp::Reverse(groups[&root].len()), h));
    for (_, root) in by_size {
        let k = (0..folds)
            .min_by_key(|&k| (sizes[k], k))
            .expect("folds > 0");
        for &i in &groups[&root] {
            fold_of[i] = k;
        }
        sizes[k] += groups[&root].len();
    }
    fold_of
}

fn prf(pairs: &[&Labelled], predicted: &[bool]) -> (f64, f64, f64, usize, usize, usize) {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (p, &yes) in pairs.iter().zip(predicted) {
        match (yes, p.same) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    let f1 = 2.0 * tp as f64 / (2 * tp + fp + fn_).max(1) as f64;
    (precision, recall, f1, tp, fp, fn_)
}

fn report(title: &str, pairs: &[Labelled], predicted: &[bool]) {
    println!("-- {title}");
    let subset = |keep: &dyn Fn(&Labelled) -> bool| {
        let idx: Vec<usize> = (0..pairs.len()).filter(|&i| keep(&pairs[i])).collect();
        let ps: Vec<&Labelled> = idx.iter().map(|&i| &pairs[i]).collect();
        let pr: Vec<bool> = idx.iter().map(|&i| predicted[i]).collect();
        (ps, pr)
    };
    let line = |name: &str, keep: &dyn Fn(&Labelled) -> bool| {
        let (ps, pr) = subset(keep);
        let (p, r, f, tp, fp, fn_) = prf(&ps, &pr);
        println!(
            "   {name:<34} pairs {:>3}  P {p:.3}  R {r:.3}  F1 {f:.3}  (tp {tp}, fp {fp}, fn {fn_})",
            ps.len()
        );
    };
    line("all", &|_| true);
    line("high confidence", &|p| p.high);
    for kind in ["copy", "update", "rewrite"] {
        line(&format!("{kind} + every different-story pair"), &|p| {
            p.label == kind || !p.same
        });
    }
    let (ps, pr) = subset(&|p| p.label == "related");
    let merged = pr.iter().filter(|&&x| x).count();
    println!(
        "   related (different story, same topic) pairs {:>3}  wrongly merged {merged} ({:.1}%)",
        ps.len(),
        100.0 * merged as f64 / ps.len().max(1) as f64
    );
}
