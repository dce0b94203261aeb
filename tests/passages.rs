//! Passages: what two documents share, with byte offsets into both originals; boilerplate;
//! `neardup compare`.

use std::path::PathBuf;

use neardup::align::eval::Rng;
use serde_json::Value;

use crate::util::*;

fn wire_story(prefix: &str) -> PathBuf {
    let dir = fixtures().join("wire-story");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("fixture {prefix} in {}", dir.display()))
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn offsets(side: &Value) -> (usize, usize) {
    (
        side["start"].as_u64().unwrap() as usize,
        side["end"].as_u64().unwrap() as usize,
    )
}

/// Every passage of a pair record slices its `text` out of the two original texts.
fn assert_offsets_slice_originals(pair: &Value, a: &str, b: &str) {
    for p in pair["passages"].as_array().unwrap() {
        let (sa, ea) = offsets(&p["a"]);
        let (sb, eb) = offsets(&p["b"]);
        assert_eq!(&a[sa..ea], p["a"]["text"], "{p}");
        assert_eq!(&b[sb..eb], p["b"]["text"], "{p}");
    }
}

/// The passage of `pair` that holds `in_a` (as written in a) and `in_b` (as written in b).
fn passage_holding<'p>(pair: &'p Value, a: &str, b: &str, in_a: &str, in_b: &str) -> &'p Value {
    let at_a = a.find(in_a).expect("the sentence is in a");
    let at_b = b.find(in_b).expect("the sentence is in b");
    pair["passages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            let ((sa, ea), (sb, eb)) = (offsets(&p["a"]), offsets(&p["b"]));
            sa <= at_a && at_a + in_a.len() <= ea && sb <= at_b && at_b + in_b.len() <= eb
        })
        .unwrap_or_else(|| panic!("no passage holds {in_a:?}: {pair}"))
}

const WITKOFF: &str = "We were able to win the following concession: That the United States could offer \
Article 5-like protection, which is one of the real reasons why Ukraine wants to be in NATO.";
/// Von der Leyen's statement as written in 003 (typographic apostrophes) and in 004.
const VON_DER_LEYEN_003: &str = "We welcome President Trump’s willingness to contribute to Article 5-like \
security guarantees for Ukraine, and the ‘Coalition of the willing’ — including the European Union — is ready \
to do its share.";
const VON_DER_LEYEN_004: &str = "We welcome President Trump's willingness to contribute to Article 5-like \
security guarantees for Ukraine, and the 'Coalition of the willing' — including the European Union — is ready \
to do its share.";

fn pair<'v>(pairs: &'v [Value], a: &str, b: &str) -> &'v Value {
    pairs
        .iter()
        .find(|p| {
            p["a"].as_str().unwrap().starts_with(a) && p["b"].as_str().unwrap().starts_with(b)
        })
        .unwrap_or_else(|| panic!("no pair {a} {b} in {pairs:?}"))
}

#[test]
fn wire_story_quotes_are_passages_with_offsets_in_both_originals() {
    let out = neardup()
        .args(["pairs", "--threshold", "0.05", "--passages"])
        .arg(fixtures().join("wire-story"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let pairs = json_lines(&stdout_of(&out));
    let p = pair(&pairs, "003", "004");
    assert_eq!(p["schema_version"], 1);
    let (a, b) = (read(&wire_story("003")), read(&wire_story("004")));
    assert_offsets_slice_originals(p, &a, &b);
    for (in_a, in_b) in [(WITKOFF, WITKOFF), (VON_DER_LEYEN_003, VON_DER_LEYEN_004)] {
        let passage = passage_holding(p, &a, &b, in_a, in_b);
        // The passage ends exactly where the sentence ends, in both files.
        let ((_, ea), (_, eb)) = (offsets(&passage["a"]), offsets(&passage["b"]));
        assert_eq!(ea, a.find(in_a).unwrap() + in_a.len());
        assert_eq!(eb, b.find(in_b).unwrap() + in_b.len());
    }
    let witkoff = passage_holding(p, &a, &b, WITKOFF, WITKOFF);
    assert_eq!(
        (witkoff["exact"].as_bool(), witkoff["edits"].as_u64()),
        (Some(true), Some(0))
    );
    // Typographic and straight apostrophes are the same words: the statement itself has no
    // edit (the passage's one edit is "news"/"press" conference before it).
    let statement = passage_holding(p, &a, &b, VON_DER_LEYEN_003, VON_DER_LEYEN_004);
    assert_eq!(statement["edits"], 1);
    assert!(
        statement["a"]["text"]
            .as_str()
            .unwrap()
            .starts_with("during a news conference")
    );
    assert!(
        statement["b"]["text"]
            .as_str()
            .unwrap()
            .starts_with("during a press conference")
    );
    insta::assert_json_snapshot!(p["passages"]);
    // Coverage counts the story passages' words.
    let coverage = p["coverage_a"].as_f64().unwrap();
    assert!((0.2..0.4).contains(&coverage), "{coverage}");
}

/// Words the tests write articles with.
const WORDS: &[&str] = &[
    "council",
    "river",
    "budget",
    "school",
    "market",
    "farmers",
    "harbour",
    "museum",
    "railway",
    "bridge",
    "mayor",
    "teachers",
    "storm",
    "festival",
    "library",
    "hospital",
    "police",
    "election",
    "company",
    "workers",
    "announced",
    "approved",
    "rejected",
    "opened",
    "closed",
    "delayed",
    "expanded",
    "reported",
    "planned",
    "warned",
    "new",
    "old",
    "small",
    "large",
    "local",
    "regional",
    "annual",
    "early",
    "late",
    "public",
    "private",
    "on",
    "in",
    "after",
    "before",
    "during",
    "with",
    "without",
    "near",
    "across",
    "the",
    "a",
    "its",
    "their",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "spring",
    "summer",
    "autumn",
    "winter",
    "north",
    "south",
    "east",
    "west",
    "centre",
    "plan",
    "vote",
    "report",
    "project",
    "contract",
    "road",
    "park",
    "water",
    "energy",
    "price",
    "tax",
    "fund",
    "plant",
    "office",
    "court",
    "team",
    "season",
    "match",
    "crowd",
    "visitors",
];

/// A short article written from [`WORDS`] (no two share an 8-word run in practice).
fn article(rng: &mut Rng, words: usize) -> String {
    let mut out = String::new();
    for i in 0..words {
        let w = WORDS[rng.below(WORDS.len())];
        if i % 12 == 0 {
            if i > 0 {
                out.push_str(". ");
            }
            let mut c = w.chars();
            out.extend(c.next().map(|c| c.to_ascii_uppercase()));
            out.push_str(c.as_str());
        } else {
            out.push(' ');
            out.push_str(w);
        }
    }
    out.push('.');
    out
}

/// Articles of the site in [`boilerplate_corpus`]: with 004 and the near-copy pair, 27
/// documents carry the footer, more than the default `--boilerplate-docs` (20).
const SITE_ARTICLES: usize = 24;

/// The banner line and the footer (last two lines) of fixture 004.
fn banner_and_footer() -> (String, String) {
    let text = read(&wire_story("004"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "BREAKINGON");
    (lines[0].to_string(), lines[lines.len() - 2..].join("\n"))
}

/// Twenty-six articles carrying 004's banner and footer (twenty-four of them written by
/// [`article`], and a near-copy pair of the harness's `RATE` story with the footer only).
fn boilerplate_corpus(s: &Scratch) -> PathBuf {
    let (banner, footer) = banner_and_footer();
    let mut rng = Rng::new(2025);
    let mut records: Vec<(String, String)> = (0..SITE_ARTICLES)
        .map(|i| {
            let title = article(&mut rng, 6);
            let body = article(&mut rng, 90);
            (
                format!("site-{i:02}"),
                format!("{banner}\n\n{title}\n\n{body}\n\n{footer}\n"),
            )
        })
        .collect();
    records.push(("rate-1".into(), format!("{RATE}\n\n{footer}")));
    records.push(("rate-2".into(), format!("{RATE_COPY}\n\n{footer}")));
    let borrowed: Vec<(&str, &str)> = records
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    s.jsonl("site.jsonl", &borrowed)
}

#[test]
fn banner_and_footer_are_boilerplate_not_story_reuse() {
    let s = Scratch::new();
    let corpus = boilerplate_corpus(&s);
    let out = neardup()
        .args(["pairs", "--threshold", "0.05", "--passages"])
        .arg(fixtures().join("wire-story"))
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let pairs = json_lines(&stdout_of(&out));
    let with_004: Vec<&Value> = pairs
        .iter()
        .filter(|p| {
            p["a"].as_str().unwrap().starts_with("004")
                || p["b"].as_str().unwrap().starts_with("004")
        })
        .collect();
    assert!(
        with_004.len() >= SITE_ARTICLES,
        "004 pairs with the site's articles through its footer: {}",
        with_004.len()
    );
    let (mut boilerplate, mut story) = (0, 0);
    for p in &pairs {
        for passage in p["passages"].as_array().unwrap() {
            let texts = [
                passage["a"]["text"].as_str().unwrap(),
                passage["b"]["text"].as_str().unwrap(),
            ];
            let site_text = texts.iter().any(|t| {
                t.contains("BREAKINGON")
                    || t.contains("Breakingon.com")
                    || t.contains("All rights reserved")
            });
            if passage["boilerplate"] == true {
                boilerplate += 1;
                assert_eq!(passage["documents"], 27, "{passage}");
            } else {
                story += 1;
                assert!(
                    !site_text,
                    "site text reported as story reuse in {} / {}: {passage}",
                    p["a"], p["b"]
                );
            }
        }
    }
    assert!(
        boilerplate >= SITE_ARTICLES && story >= 8,
        "{boilerplate} boilerplate, {story} story passages"
    );
    // 004 shares nothing but boilerplate with the site's articles: no story coverage.
    for p in with_004
        .iter()
        .filter(|p| p["a"].as_str().unwrap().starts_with("site"))
    {
        assert_eq!(
            (p["coverage_a"].as_f64(), p["coverage_b"].as_f64()),
            (Some(0.0), Some(0.0)),
            "{p}"
        );
    }
    // The story of 003/004 is unchanged by the corpus around it.
    let wire = pair(&pairs, "003", "004");
    let (a, b) = (read(&wire_story("003")), read(&wire_story("004")));
    assert_eq!(
        passage_holding(wire, &a, &b, WITKOFF, WITKOFF)["boilerplate"],
        false
    );
    // A near-copy pair: the story is one passage, the footer another, marked.
    let rates = pair(&pairs, "rate-1", "rate-2");
    let kinds: Vec<(bool, &str)> = rates["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["boilerplate"].as_bool().unwrap(),
                p["a"]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(
        !kinds[0].0
            && kinds[0].1.starts_with("The central bank")
            && kinds[0].1.ends_with("announcement.")
    );
    assert!(
        kinds[1].0 && kinds[1].1.starts_with("Breakingon.com") && kinds[1].1.ends_with("reserved.")
    );
    let coverage = rates["coverage_a"].as_f64().unwrap();
    assert!(
        coverage > 0.3 && coverage < 0.6,
        "the footer is not counted: {coverage}"
    );
}

#[test]
fn a_story_syndicated_many_times_is_not_boilerplate() {
    // Thirty identical copies: every shingle is in 30 documents, but the copies have no
    // text of their own beside it. Two articles with a story of their own and a footer
    // that twenty other articles carry: the footer is boilerplate, the story is not.
    let s = Scratch::new();
    let (_, footer) = banner_and_footer();
    let mut records: Vec<(String, String)> = (0..30)
        .map(|i| (format!("copy-{i:02}"), STORM.to_string()))
        .collect();
    records.push(("site-a".into(), format!("{RATE}\n\n{footer}")));
    records.push(("site-b".into(), format!("{RATE_COPY}\n\n{footer}")));
    let mut rng = Rng::new(9);
    for i in 0..20 {
        records.push((
            format!("other-{i:02}"),
            format!("{}\n\n{footer}", article(&mut rng, 60)),
        ));
    }
    let borrowed: Vec<(&str, &str)> = records
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let f = s.jsonl("syndicated.jsonl", &borrowed);
    let out = neardup()
        .args(["pairs", "--passages", "--threshold", "0.8"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let pairs = json_lines(&stdout_of(&out));
    let copies = pair(&pairs, "copy-00", "copy-01");
    assert_eq!(copies["passages"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            copies["coverage_a"].as_f64(),
            copies["passages"][0]["boilerplate"].as_bool()
        ),
        (Some(1.0), Some(false))
    );
    let sites = pair(&pairs, "site-a", "site-b");
    let flags: Vec<bool> = sites["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["boilerplate"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [false, true], "{sites}");
    assert!(
        sites["passages"][0]["a"]["text"]
            .as_str()
            .unwrap()
            .starts_with("The central bank")
    );
}

#[test]
fn compare_highlights_both_texts() {
    let (a, b) = (wire_story("003"), wire_story("004"));
    let out = neardup().arg("compare").arg(&a).arg(&b).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(!text.contains('\x1b'), "no colours when piped");
    assert!(
        text.contains("7 shared passages (3 exact), 0 boilerplate"),
        "{text}"
    );
    assert!(
        text.contains(&format!("[1>stating, \"{WITKOFF}<1]")),
        "{text}"
    );
    assert!(
        text.contains(&format!("[1>stating, “{WITKOFF}<1]")),
        "{text}"
    );
    assert!(
        text.contains("[1] 33 words, exact: a 335..518, b 1169..1354"),
        "{text}"
    );
    let coloured = stdout_of(
        &neardup()
            .args(["compare", "--color", "always"])
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap(),
    );
    assert!(coloured.contains("\x1b[1;31mstating"), "{coloured}");

    let json = stdout_of(
        &neardup()
            .args(["compare", "--format", "json"])
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap(),
    );
    let record: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["schema_version"], 1);
    assert_eq!(record["a"]["words"], 503);
    assert!((record["jaccard"].as_f64().unwrap() - 0.0812).abs() < 1e-9);
    // The same passages as `pairs --passages` reports for the pair.
    let pairs = json_lines(&stdout_of(
        &neardup()
            .args(["pairs", "--threshold", "0.05", "--passages"])
            .arg(fixtures().join("wire-story"))
            .output()
            .unwrap(),
    ));
    assert_eq!(record["passages"], pair(&pairs, "003", "004")["passages"]);
}

#[test]
fn compare_ids_within_an_input_and_against_a_corpus() {
    let s = Scratch::new();
    let corpus = boilerplate_corpus(&s);
    let out = neardup()
        .args(["compare", "--format", "json", "--in"])
        .arg(&corpus)
        .args(["rate-1", "rate-2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let record: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let flags: Vec<bool> = record["passages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["boilerplate"].as_bool().unwrap())
        .collect();
    assert_eq!(
        flags,
        [false, true],
        "the corpus is the input: the footer is boilerplate"
    );
    assert_eq!(
        record["a"]["location"]
            .as_str()
            .map(|l| l.ends_with("site.jsonl:25")),
        Some(true)
    );

    // Two files, boilerplate counted in a corpus given apart.
    let one = s.write("one.txt", format!("{RATE}\n\n{}", banner_and_footer().1));
    let two = s.write(
        "two.txt",
        format!("{RATE_COPY}\n\n{}", banner_and_footer().1),
    );
    let plain = stdout_of(
        &neardup()
            .arg("compare")
            .arg(&one)
            .arg(&two)
            .output()
            .unwrap(),
    );
    assert!(
        plain.contains("1 shared passage (0 exact), 0 boilerplate"),
        "{plain}"
    );
    let against = stdout_of(
        &neardup()
            .arg("compare")
            .arg(&one)
            .arg(&two)
            .arg("--corpus")
            .arg(&corpus)
            .output()
            .unwrap(),
    );
    assert!(
        against.contains("1 shared passage (0 exact), 1 boilerplate"),
        "{against}"
    );
    // Counted in the corpus's 26 documents that carry the footer, and in the two files.
    assert!(
        against.contains("[2] 65 words, boilerplate (in 28 documents)"),
        "{against}"
    );

    // The plain output names each side by the id typed, then where it was read.
    let plain = neardup()
        .args(["compare", "--in"])
        .arg(&corpus)
        .args(["rate-1", "rate-2"])
        .output()
        .unwrap();
    let plain = stdout_of(&plain);
    assert!(plain.starts_with("a  rate-1  ("), "{plain}");
    assert!(plain.contains("site.jsonl:25, "), "{plain}");

    let missing = neardup()
        .args(["compare", "--in"])
        .arg(&corpus)
        .args(["rate-1", "nope"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr_of(&missing).contains(r#"no document with id "nope" in the inputs"#),
        "{}",
        stderr_of(&missing)
    );
    let stdin = neardup().args(["compare", "-"]).arg(&one).output().unwrap();
    assert_eq!(stdin.status.code(), Some(1));
    assert!(stderr_of(&stdin).contains("cannot take standard input"));
}

/// Near-copies with shuffled paragraphs and edits, for the output contract checks.
fn shuffled_corpus(order: &[usize]) -> String {
    let mut rng = Rng::new(7);
    let bases: Vec<Vec<String>> = (0..6)
        .map(|_| (0..4).map(|_| article(&mut rng, 30)).collect())
        .collect();
    let mut records = Vec::new();
    for i in 0..60 {
        let mut paragraphs = bases[i % 6].clone();
        paragraphs.rotate_left(i % 4);
        let k = i % paragraphs.len();
        paragraphs[k] = paragraphs[k].replacen(" the ", " one ", 1);
        let text = paragraphs.join("\n\n");
        records.push(serde_json::json!({"id": format!("doc-{i:03}"), "text": text}).to_string());
    }
    order.iter().map(|&i| records[i].clone() + "\n").collect()
}

#[test]
fn passages_are_identical_across_threads_input_orders_and_spilling() {
    let s = Scratch::new();
    let natural: Vec<usize> = (0..60).collect();
    let mut shuffled = natural.clone();
    let mut rng = Rng::new(3);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i + 1));
    }
    let a = s.write("natural.jsonl", shuffled_corpus(&natural));
    let b = s.write("shuffled.jsonl", shuffled_corpus(&shuffled));
    let run = |input: &PathBuf, extra: &[&str]| {
        let out = neardup()
            .args(["pairs", "--passages", "--threshold", "0.3"])
            .args(extra)
            .arg(input)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        out.stdout
    };
    let reference = run(&a, &["--threads", "1"]);
    let pairs = json_lines(&String::from_utf8(reference.clone()).unwrap());
    let counts: Vec<usize> = pairs
        .iter()
        .map(|p| p["passages"].as_array().unwrap().len())
        .collect();
    assert!(
        pairs.len() > 100 && counts.iter().all(|&n| n >= 1) && counts.contains(&2),
        "{counts:?}"
    );
    assert_eq!(run(&a, &["--threads", "3"]), reference, "3 threads");
    assert_eq!(run(&b, &["--threads", "2"]), reference, "shuffled input");
    assert_eq!(
        run(&a, &["--memory-budget", "1KiB"]),
        reference,
        "spilled sets and texts"
    );
    let records: String = String::from_utf8(std::fs::read(&a).unwrap()).unwrap();
    let from_stdin = neardup()
        .args(["pairs", "--passages", "--threshold", "0.3", "-"])
        .write_stdin(records)
        .output()
        .unwrap();
    assert_eq!(from_stdin.stdout, reference, "standard input");
}

#[test]
fn offsets_into_a_text_file_count_its_byte_order_mark() {
    let s = Scratch::new();
    let body = "The quick brown fox jumps over the lazy dog near the river bank while the farmer\n";
    let bom = s.write("docs/bom.txt", format!("\u{feff}{body}"));
    let plain = s.write("docs/plain.txt", body);
    let file = std::fs::read(&bom).unwrap();
    let check = |p: &Value, side: &str| {
        let (start, end) = offsets(&p[side]);
        assert_eq!(
            &file[start..end],
            p[side]["text"].as_str().unwrap().as_bytes(),
            "{p}"
        );
    };
    let out = neardup()
        .args(["compare", "--format", "json"])
        .arg(&bom)
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let record: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(record["passages"][0]["a"]["start"], 3, "{record}");
    check(&record["passages"][0], "a");
    let pairs = json_lines(&stdout_of(
        &neardup()
            .args(["pairs", "--passages"])
            .arg(s.path("docs"))
            .output()
            .unwrap(),
    ));
    // The mark is no word: the two documents are still identical.
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0]["jaccard"], 1.0);
    assert_eq!(pairs[0]["a"], "bom.txt");
    check(&pairs[0]["passages"][0], "a");
    // dedup turns a text document into a record: its text leaves the mark out.
    let kept = json_lines(&stdout_of(
        &neardup().arg("dedup").arg(&bom).output().unwrap(),
    ));
    assert_eq!(kept[0]["text"], body);
}

#[test]
fn passage_columns_in_csv_and_clusters() {
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    let csv = stdout_of(
        &neardup()
            .args(["pairs", "--passages", "--format", "csv"])
            .arg(&f)
            .output()
            .unwrap(),
    );
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "a,b,jaccard,estimated_jaccard,containment_a_in_b,containment_b_in_a,passages,boilerplate_passages,coverage_a,coverage_b"
        )
    );
    assert!(lines.next().unwrap().starts_with("rate-1,rate-2,"));
    let clusters = json_lines(&stdout_of(
        &neardup()
            .args(["cluster", "--passages"])
            .arg(&f)
            .output()
            .unwrap(),
    ));
    let passages = clusters[0]["pairs"][0]["passages"].as_array().unwrap();
    assert_eq!(passages.len(), 1);
    assert_eq!(
        passages[0]["edits"], 1,
        "one word differs (dashes are not words): {passages:?}"
    );
    // Without --passages, the records are as before.
    let plain = json_lines(&stdout_of(
        &neardup().arg("pairs").arg(&f).output().unwrap(),
    ));
    assert!(plain[0].get("passages").is_none() && plain[0].get("coverage_a").is_none());
}

/// `compare DIR FILE` says that A and B must be two files, not what is wrong with some
/// file inside DIR (the directory was walked first).
#[test]
fn compare_refuses_a_directory_for_a_or_b() {
    let s = Scratch::new();
    let one = s.write("docs/one.txt", RATE);
    std::os::unix::fs::symlink(s.path("nowhere"), s.path("docs/dangling.txt")).unwrap();
    for (a, b) in [(s.path("docs"), one.clone()), (one.clone(), s.path("docs"))] {
        let out = neardup().arg("compare").arg(&a).arg(&b).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("A and B must be two files"), "{err}");
        assert!(!err.contains("dangling"), "{err}");
    }
}

/// Two articles of an archive compared against that archive: they were rejected as
/// repeated ids (exit 2) or counted twice, as the paths were spelled (QA pass 13).
/// A newcomer's two guesses at comparing records: ids without `--in` (no such file) and a
/// JSON Lines file as A (read as one text, JSON and all). Each names `--in`.
#[test]
fn compare_points_to_in_when_given_ids_or_a_json_lines_file() {
    let s = Scratch::new();
    let records = s.jsonl("news.jsonl", &[("rate", RATE), ("copy", RATE_COPY)]);
    let b = s.write("b.txt", STORM);
    let out = neardup()
        .args(["compare", "rate", "copy", "--corpus"])
        .arg(&records)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("rate: no such file; A and B are two files")
            && stderr_of(&out).contains("give their ids with --in FILE A B"),
        "{}",
        stderr_of(&out)
    );
    for quiet in [false, true] {
        let mut compare = neardup();
        compare.arg("compare").arg(&records).arg(&b);
        if quiet {
            compare.arg("-q");
        }
        let out = compare.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out)
                .contains("is named as JSON Lines, but A and B are read as one text document each")
                && stderr_of(&out).contains("ID_A ID_B"),
            "{}",
            stderr_of(&out)
        );
    }
}

#[test]
fn compare_counts_a_and_b_once_when_the_corpus_holds_them() {
    let s = Scratch::new();
    s.write("docs/a.txt", RATE);
    s.write("docs/b.txt", RATE_COPY);
    s.write("docs/c.txt", STORM);
    let weighed = |a: &str, b: &str, corpus: &str| {
        let out = neardup()
            .current_dir(s.path("docs"))
            .args(["compare", a, b, "--corpus", corpus, "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert!(
            !stderr_of(&out).contains("duplicate id"),
            "{}",
            stderr_of(&out)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["story"]["statistics_documents"].clone()
    };
    let expected = weighed("a.txt", "b.txt", "c.txt");
    assert_eq!(expected, 3);
    for (a, b, corpus) in [
        ("a.txt", "b.txt", "."),
        ("./a.txt", "./b.txt", "."),
        ("a.txt", "b.txt", "a.txt"),
    ] {
        let documents = weighed(a, b, corpus);
        let want = if corpus == "a.txt" { 2 } else { 3 };
        assert_eq!(documents, want, "{a} {b} --corpus {corpus}");
    }
}

/// `neardup compare --in` over `records` (JSON Lines in `in.jsonl`): the exit code and
/// standard error.
fn compare_in(records: &[serde_json::Value], a: &str, b: &str) -> (Option<i32>, String) {
    let s = Scratch::new();
    let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
    let input = s.write("in.jsonl", lines);
    let out = neardup()
        .args(["compare", "--in"])
        .arg(&input)
        .args([a, b])
        .output()
        .unwrap();
    (out.status.code(), stderr_of(&out))
}

/// An id whose record was skipped (no text) was "not in the inputs", though it is; an
/// unreadable date judged A and B at any distance without a word (QA pass 13).
#[test]
fn compare_says_what_it_set_aside() {
    let (code, err) = compare_in(
        &[
            serde_json::json!({"id": "e", "text": ""}),
            serde_json::json!({"id": "ok", "text": RATE}),
        ],
        "e",
        "ok",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("in.jsonl:1: empty text"), "{err}");
    assert!(err.contains("records skipped as bad"), "{err}");
    let (code, err) = compare_in(
        &[
            serde_json::json!({"id": "a", "text": RATE, "date": "8/18/25"}),
            serde_json::json!({"id": "b", "text": RATE_COPY, "date": "20250818"}),
        ],
        "a",
        "b",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("1 date could not be parsed (e.g. \"8/18/25\")"),
        "{err}"
    );
}

#[test]
fn passages_at_the_story_level_are_a_usage_error_pointing_to_compare() {
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    for command in ["pairs", "cluster"] {
        let out = neardup()
            .args([command, "--passages", "--level", "story"])
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(
            err.contains("near-copy") && err.contains("neardup compare"),
            "{err}"
        );
    }
}

#[test]
fn compare_shows_control_characters_of_a_document_escaped() {
    let s = Scratch::new();
    let body = "officials said the central bank would raise its key rate by half a point";
    let text = format!("\x1b[31mred\x1b[0m {body}\u{0}\u{7}\r\nnext\tline\rover");
    let f = s.jsonl("in.jsonl", &[("ctrl\x1b[2J", &text), ("plain", body)]);
    let out = neardup()
        .args(["compare", "--in"])
        .arg(&f)
        .args(["ctrl\x1b[2J", "plain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown = stdout_of(&out);
    for raw in ['\x1b', '\0', '\x07'] {
        assert!(!shown.contains(raw), "{raw:?} in {shown}");
    }
    // Line breaks and tabs keep the layout; a lone carriage return would overwrite it.
    assert!(
        shown.contains("\\u{1b}[31mred\\u{1b}[0m ")
            && shown.contains("\\u{0}\\u{7}\r\nnext\tline\\rover")
            && shown.contains("── a: ctrl\\u{1b}[2J ──"),
        "{shown}"
    );
    // JSON keeps the text as it is.
    let json = stdout_of(
        &neardup()
            .args(["compare", "--format", "json", "--in"])
            .arg(&f)
            .args(["ctrl\x1b[2J", "plain"])
            .output()
            .unwrap(),
    );
    let record: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["a"]["id"], "ctrl\x1b[2J");
    assert_eq!(record["passages"][0]["a"]["text"], body);
}

/// Half-width katakana with its (semi-)voiced marks is the full-width text after NFKC,
/// and compares as the same text (QA 23: `ｶﾞ` was two words, `ガ` one).
#[test]
fn half_width_katakana_compares_as_its_full_width_form() {
    let s = Scratch::new();
    let full = s.write("kf.txt", "ガギグゲゴとアイウエオの".repeat(40));
    let half = s.write("kh.txt", "ｶﾞｷﾞｸﾞｹﾞｺﾞとｱｲｳｴｵの".repeat(40));
    let out = neardup()
        .args(["compare", "--format", "json"])
        .arg(&full)
        .arg(&half)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let record: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(record["jaccard"], 1.0, "{record}");
    assert_eq!(record["a"]["words"], record["b"]["words"], "{record}");
}

/// Bidirectional controls would let a document reorder what the terminal shows after
/// them, the `[n>` markers included ("Trojan Source"): they are escaped like control
/// characters, and JSON keeps them.
#[test]
fn compare_shows_bidirectional_controls_of_a_document_escaped() {
    let s = Scratch::new();
    let body = "officials said the central bank would raise its key rate by half a point";
    let controls = [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
    ];
    let hostile: String = controls.iter().collect();
    let text = format!("{body} {hostile} end");
    let f = s.jsonl("in.jsonl", &[("rtl\u{202E}di", &text), ("plain", body)]);
    let out = neardup()
        .args(["compare", "--color", "never", "--in"])
        .arg(&f)
        .args(["rtl\u{202E}di", "plain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown = stdout_of(&out);
    for raw in controls {
        assert!(!shown.contains(raw), "{raw:?} in {shown}");
    }
    assert!(
        shown.contains("\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}\\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{200e}\\u{200f}\\u{61c} end")
            && shown.contains("── a: rtl\\u{202e}di ──"),
        "{shown}"
    );
    let json = stdout_of(
        &neardup()
            .args(["compare", "--format", "json", "--in"])
            .arg(&f)
            .args(["rtl\u{202E}di", "plain"])
            .output()
            .unwrap(),
    );
    let record: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["a"]["id"], "rtl\u{202E}di");
}

#[test]
fn help_teaches_passages() {
    let help = stdout_of(&neardup().args(["help", "compare"]).output().unwrap());
    for needle in [
        "--in",
        "--corpus",
        "--color",
        "[n>",
        "boilerplate",
        "Examples:",
        "--min-passage-words",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in compare help");
    }
    let help = stdout_of(&neardup().args(["help", "pairs"]).output().unwrap());
    for needle in [
        "--passages",
        "--boilerplate-docs",
        "--passage-gap",
        "coverage_a",
        "Near-copy level only",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in pairs help");
    }
}

/// Reads the `text` fields of a JSON Lines corpus.
fn texts_of(path: PathBuf) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn planted_passages_are_found_in_real_articles() {
    // Acceptance: plagdet >= 0.90 with verbatim and lightly edited passages. The
    // `passage_bench` example runs the full benchmark; this is a smaller sample of it.
    let Some(data) = data_dir() else { return };
    let texts = texts_of(data.join("bbc-news.jsonl"));
    let articles: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
    let settings = neardup::align::PassageSettings::default();
    for (rate, min_plagdet, min_recall) in [
        ((0.0, 0.0), 0.95, 0.95),
        ((0.0, 0.05), 0.90, 0.90),
        ((0.05, 0.10), 0.80, 0.80),
    ] {
        let plant = neardup::align::eval::PlantSettings {
            edit_rate: rate,
            ..Default::default()
        };
        let scores = neardup::align::eval::benchmark(&articles, 120, &plant, &settings, 11);
        eprintln!("edits {rate:?}: {scores:?}");
        assert!(scores.cases >= 200, "{scores:?}");
        assert!(scores.plagdet >= min_plagdet, "edits {rate:?}: {scores:?}");
        assert!(
            scores.passage_recall >= min_recall && scores.passage_precision >= 0.9,
            "edits {rate:?}: {scores:?}"
        );
    }
}

#[test]
fn reuters_passages_slice_the_original_records() {
    let Some(data) = data_dir() else { return };
    let input = data.join("reuters21578.jsonl");
    let out = neardup()
        .args(["pairs", "--passages", "--threshold", "0.5", "--quiet"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success());
    let pairs = json_lines(&stdout_of(&out));
    let texts: std::collections::HashMap<String, String> = texts_of(input).into_iter().collect();
    assert!(pairs.len() > 500);
    let mut whole = 0;
    for p in &pairs {
        let (a, b) = (
            &texts[p["a"].as_str().unwrap()],
            &texts[p["b"].as_str().unwrap()],
        );
        assert_offsets_slice_originals(p, a, b);
        let (ca, cb) = (
            p["coverage_a"].as_f64().unwrap(),
            p["coverage_b"].as_f64().unwrap(),
        );
        assert!((0.0..=1.0).contains(&ca) && (0.0..=1.0).contains(&cb));
        if a == b {
            // An identical copy is one exact passage over all of it, or several when
            // recurring template sentences are cut out as boilerplate.
            let passages = p["passages"].as_array().unwrap();
            let words: u64 = passages
                .iter()
                .map(|x| x["a"]["words"].as_u64().unwrap())
                .sum();
            let mut tokens = Vec::new();
            neardup::text::tokenize(a, &mut tokens);
            assert_eq!(words, tokens.len() as u64, "{p}");
            assert!(passages.iter().all(|x| x["exact"] == true));
            if passages.len() == 1 {
                assert_eq!((ca, cb), (1.0, 1.0));
            }
            whole += 1;
        }
    }
    assert!(whole > 50, "reuters holds identical re-sends: {whole}");
}
