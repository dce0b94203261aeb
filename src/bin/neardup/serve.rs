//! `neardup serve`: the feed index behind HTTP, for scrapers that push articles from many
//! processes or machines (`watch` reads one standard input).
//!
//! Connections are async tasks (tokio, hyper), so a slow or stalled client holds a task,
//! not a thread, and is cut off after `--read-timeout`. Each request's lines are
//! fingerprinted on a blocking thread (at most `--threads` bodies at once) and handed to
//! the one thread that owns the index; it adds the articles of whatever has arrived,
//! writes the group to the log, makes it durable and only then hands each request its
//! verdicts. So one writer, group commit, and an answer means the articles are stored, as
//! with `watch`. A body that does not arrive whole is refused and none of it is stored.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use neardup::feed::{Access, Article, FeedIndex, StatsRecord};
use neardup::input::FieldNames;
use neardup::pipeline::Fingerprinter;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore, oneshot};

use crate::args::parse_size;
use crate::feed::{
    Answer, CompactionRecord, Compactor, DurabilityArg, LiveArgs, WatchCounts, acknowledge, check,
    commit, prepare, terminal,
};
use crate::tls::Tls;
use crate::tokens::{Endpoint, Grant, Tokens};

const SERVE_HELP: &str = "\
Endpoints:
  POST /articles   a body of JSON lines, one article each (as 'index add' reads them);
                   the answer, once the articles are stored, is one JSON line per
                   article in order: its verdict, or {\"verdict\":\"rejected\",…} with the line and
                   the reason (malformed JSON, missing text, a repeated id, …)
  POST /query      the same, but nothing is stored: each article's verdict against the
                   index as it is (as 'index query' gives it, with \"indexed\")
  POST /remove     a body of ids, one per line (as 'index remove --ids-from' reads
                   them: a line starting with '\"' is a JSON string, for an id with
                   spaces around it): those articles are taken out for good,
                   as 'index remove' does (in the background: answers go on), and the
                   answer, once they are gone, is one {\"id\",\"removed\"} line per id
  GET /health      {\"status\":\"ok\",\"articles\":N} (HEAD: the status alone); 503 with
                   \"status\":\"read-only\" and the error while articles cannot be stored
  GET /stats       the index's statistics (as 'index stats' gives them) and what this
                   server answered since it started: articles by verdict, requests by
                   status, time to answer a request (median, p99, max in ms; each
                   request to /articles or /query counts once), connections
                   open, its compactions (--compact-every: done, failed, running,
                   the last) and removals (waiting, running, removed, failed)

  Status 200 when the body was read (rejected lines are answered line by line); 400 for
  a body that is not JSON lines at all (empty) or that broke off; 401 without a token
  of --token-file, 403 for an endpoint its line there does not allow; 404 and 405 for
  other paths and methods; 408 when the client sent nothing for --read-timeout; 413
  for a body over --max-body-bytes (compressed or decompressed); 415 for a
  Content-Encoding other than gzip or zstd; 503 while stopping, or when storing the
  articles failed (a full disk: the error says so): nothing of that request is
  acknowledged, the server opens the index again from disk (every answered article is
  there) and goes on, so the request may be sent again later.
  Nothing of a request answered otherwise is stored. SIGINT or SIGTERM stops accepting
  connections, answers the requests in flight (waiting at most --read-timeout for
  them), syncs the index and exits.

  A body may be sent compressed, with 'Content-Encoding: gzip' or 'zstd'; one that does
  not decompress whole is refused (400). Answers of 1 KiB or more come compressed when
  the request's 'Accept-Encoding' takes zstd or gzip (curl --compressed).

  With --token-file, every endpoint but /health wants the header
  'Authorization: Bearer TOKEN' with one of the file's tokens (one per line: give each
  client its own). A token may be followed on its line by the endpoints it may use
  (articles, query, remove, stats; none named: all), so a scraper can add articles but
  not take any out: another endpoint answers it 403. SIGHUP reads the file again, so a
  token is added, limited or revoked without a restart.

  Off localhost, give --tls-cert and --tls-key (PEM files) so that it speaks HTTPS and
  tokens do not cross the network in clear, or put it behind a proxy that does (nginx,
  Caddy). SIGHUP reads the certificate and key again too, so a renewed certificate
  (certbot's deploy hook, say) is taken without a restart; a plain-HTTP request to an
  HTTPS server is answered 400 saying so.
  Past --max-connections open connections, new ones wait in the kernel's queue until
  one closes.

Examples:
  neardup index create news.idx --level story --window 3d
  neardup serve news.idx --listen 0.0.0.0:8080
  curl --data-binary @today.jsonl http://localhost:8080/articles
  curl --compressed --data-binary @candidates.jsonl http://localhost:8080/query
  zstd -c today.jsonl | curl -H 'Content-Encoding: zstd' --data-binary @- \\
       http://localhost:8080/articles
  head -c 32 /dev/urandom | base64 > token && chmod 600 token
  neardup serve news.idx --listen 0.0.0.0:8443 --token-file token \\
       --tls-cert /etc/letsencrypt/live/dedup.example.com/fullchain.pem \\
       --tls-key /etc/letsencrypt/live/dedup.example.com/privkey.pem & serve_pid=$!
  curl -H \"Authorization: Bearer $(head -1 token)\" --data-binary @today.jsonl \\
       https://dedup.example.com:8443/articles
  echo \"$(head -c 32 /dev/urandom | base64) query,stats  # the dashboard\" >> token
  kill -HUP $serve_pid      # reads the token and TLS files again";

#[derive(Debug, Args)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// The index directory (see 'neardup index create').
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR", value_parser = parse_listen)]
    pub listen: String,
    /// Request bodies fingerprinted at once, each on its own thread (default: one per
    /// core; one more thread adds the articles to the index, in arrival order;
    /// connections cost no thread). 1 to 1024.
    #[arg(long, value_name = "N", value_parser = crate::args::parse_threads)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Largest request body accepted (e.g. 16MiB), as sent and, when compressed, as
    /// decompressed; a larger one is refused whole (413).
    #[arg(long, default_value = "64MiB", value_parser = parse_body_size, value_name = "SIZE", help_heading = "Input")]
    pub max_body_bytes: u64,
    /// Longest a client may leave a request's head or body waiting for its next bytes
    /// (e.g. 30s, 2m) before the request is refused (408) and the connection closed; an
    /// idle kept-alive connection, or one whose client stops reading its answer, is
    /// closed after it too.
    #[arg(long, default_value = "30s", value_parser = parse_timeout, value_name = "DURATION", help_heading = "Input")]
    pub read_timeout: u64,
    /// Connections open at once; more wait, unanswered, until one closes (each costs a
    /// file descriptor: the soft limit is raised to match, and a hard limit too low for
    /// it is warned of).
    #[arg(long, default_value_t = 512, value_name = "N", value_parser = parse_max_connections, help_heading = "Input")]
    pub max_connections: usize,
    /// A file of the tokens clients must send as 'Authorization: Bearer TOKEN' (every
    /// endpoint but /health): one per line, so that each client can have its own,
    /// optionally followed by the endpoints it may use ('scraper-token articles';
    /// 'dash-token query,stats'; none named: all). Blank lines and lines starting with
    /// '#' are skipped. SIGHUP reads it again: a token taken out is refused from then on.
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub token_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first), and --tls-key. SIGHUP
    /// reads both files again: a renewed certificate is taken without a restart.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        help_heading = "Input"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        help_heading = "Input"
    )]
    pub tls_key: Option<PathBuf>,
    /// No warnings or summary on standard error (the address is still printed).
    #[arg(short, long, help_heading = "Run")]
    pub quiet: bool,
}

/// `--max-body-bytes`: a size, at least 1 byte (0 refused every request with a body).
fn parse_body_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err("must be at least 1 byte".into()),
        n => Ok(n),
    }
}

/// Most connections `--max-connections` takes: Linux's default ceiling of open files per
/// process (`fs.nr_open`), each connection holding one. (The runtime's limit is far
/// above, and a value past it panicked there.)
const MOST_CONNECTIONS: usize = 1 << 20;

/// `--max-connections`: a whole number from 1 to [`MOST_CONNECTIONS`].
fn parse_max_connections(s: &str) -> Result<usize, String> {
    crate::args::whole_number_in(s, 1..=MOST_CONNECTIONS)
}

/// Seconds of a `--read-timeout` (`30s`, `2m`, or seconds), at least one.
fn parse_timeout(s: &str) -> Result<u64, String> {
    match neardup::story::parse_window(s)? {
        secs if secs >= 1 => Ok(secs as u64),
        _ => Err("a timeout must be at least 1s".into()),
    }
}

/// File descriptors kept for everything but connections: the index's log and lock, the
/// listener, the runtime's own, standard streams.
const SPARE_DESCRIPTORS: u64 = 64;

/// The tokens in force, shared by the connections and the thread that reloads them.
type TokensInForce = Arc<std::sync::RwLock<Tokens>>;

/// What a request asks of the index's thread.
enum Job {
    /// The lines of one request body (1-based numbers, blank lines left out), each
    /// fingerprinted or rejected; answered with one JSON line per article.
    Articles {
        lines: Vec<(u64, Result<Article, Answer>)>,
        /// Checked against the index, not added (`/query`).
        query: bool,
        read_at: Instant,
        /// The answer, or why the index failed and nothing of it was acknowledged.
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// Ids to remove (`/remove`); answered once they are gone, with one JSON line per id.
    Remove {
        ids: Vec<String>,
        reply: RemovalReply,
    },
    /// How many articles the index holds, and why it takes none now, if it does not.
    Count {
        reply: oneshot::Sender<(usize, Option<String>)>,
    },
    /// The index's statistics and what this server has answered.
    Stats { reply: oneshot::Sender<ServedStats> },
}

/// Where a removal's answer goes: its lines, or why it failed.
type RemovalReply = oneshot::Sender<Result<Vec<u8>, String>>;

/// `/remove` requests: each rewrites the index without its articles in the background,
/// one at a time and never beside a compaction (both write the next generation).
#[derive(Default)]
struct Removals {
    waiting: std::collections::VecDeque<(Vec<String>, RemovalReply)>,
    running: Option<Removal>,
    /// Articles removed, and removals that failed, since the server started.
    removed: u64,
    failed: u64,
    /// No line on standard error for each removal (an operator's record of takedowns).
    quiet: bool,
}

/// What `/stats` says of removals.
#[derive(Serialize)]
struct RemovalRecord {
    waiting: usize,
    running: bool,
    removed: u64,
    failed: u64,
}

struct Removal {
    ids: Vec<String>,
    found: Vec<bool>,
    rewrite: neardup::feed::Compaction,
    reply: RemovalReply,
}

impl Removals {
    /// Finishes the running removal once its rewrite is done, answering it, and starts
    /// the next when no compaction runs. A removal that fails is answered with the
    /// error; the index stays as it was.
    fn turn(&mut self, index: &mut FeedIndex, compacting: bool) {
        if let Some(removal) = self.running.take() {
            if !removal.rewrite.is_finished() {
                self.running = Some(removal);
                return;
            }
            let Removal {
                ids,
                found,
                rewrite,
                reply,
            } = removal;
            let done = index.finish_compaction(rewrite).map(|report| {
                self.removed += report.removed;
                if !self.quiet {
                    // An id asked for twice is named once, as it was removed once.
                    let mut named = std::collections::HashSet::new();
                    let gone: Vec<&str> = ids
                        .iter()
                        .zip(&found)
                        .filter(|(id, found)| **found && named.insert(id.as_str()))
                        .map(|(id, _)| id.as_str())
                        .collect();
                    eprintln!(
                        "neardup: serve: removed {}: {}",
                        neardup::report::count(report.removed, "article", "articles"),
                        gone.join(" ")
                    );
                }
                answer_removal(&ids, &found)
            });
            let _ = reply.send(done.map_err(|e| self.failed(&e)));
        }
        while !compacting && self.running.is_none() {
            let Some((ids, reply)) = self.waiting.pop_front() else {
                return;
            };
            match index.start_removal(&ids) {
                Ok((found, Some(rewrite))) => {
                    self.running = Some(Removal {
                        ids,
                        found,
                        rewrite,
                        reply,
                    });
                }
                // None of them is indexed: nothing to rewrite.
                Ok((found, None)) => {
                    let _ = reply.send(Ok(answer_removal(&ids, &found)));
                }
                Err(e) => {
                    let _ = reply.send(Err(self.failed(&e)));
                }
            }
        }
    }

    /// Gives up the running and waiting removals (the index is opened again after a
    /// failed write), answering each with why: nothing of them was removed.
    fn abandon(&mut self, why: &str) {
        let running = self.running.take().map(|r| r.reply);
        for reply in running
            .into_iter()
            .chain(self.waiting.drain(..).map(|(_, reply)| reply))
        {
            self.failed += 1;
            let _ = reply.send(Err(format!("{why}; nothing was removed")));
        }
    }

    /// Counts and reports a removal that failed; the reason to answer with.
    fn failed(&mut self, e: &neardup::Error) -> String {
        self.failed += 1;
        if !self.quiet {
            eprintln!("neardup: warning: serve: a removal failed, nothing was removed: {e}");
        }
        e.to_string()
    }

    fn record(&self) -> RemovalRecord {
        RemovalRecord {
            waiting: self.waiting.len(),
            running: self.running.is_some(),
            removed: self.removed,
            failed: self.failed,
        }
    }
}

/// One `{"id","removed"}` line per id asked for.
fn answer_removal(ids: &[String], found: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, removed) in ids.iter().zip(found) {
        let line = serde_json::json!({ "id": id, "removed": removed });
        out.extend_from_slice(format!("{line}\n").as_bytes());
    }
    out
}

/// What every connection's requests share.
struct Front {
    jobs: mpsc::Sender<Job>,
    /// One per permit of `fingerprinting`: a fingerprinter keeps buffers between texts.
    fingerprinters: Arc<Mutex<Vec<Fingerprinter>>>,
    fingerprinting: Arc<Semaphore>,
    fields: FieldNames,
    limit: u64,
    read_timeout: Duration,
    stopping: Arc<AtomicBool>,
    /// What `Authorization: Bearer` must carry, one of (`--token-file`).
    tokens: Option<TokensInForce>,
    /// The certificate and key of HTTPS (`--tls-cert`, `--tls-key`).
    tls: Option<Arc<Tls>>,
    /// One permit per open connection (`--max-connections`).
    connections: Arc<Semaphore>,
    max_connections: usize,
    /// Connections accepted and not yet closed (the accept loop holds a permit ahead).
    open: std::sync::atomic::AtomicUsize,
    /// Requests answered, by status (for `/stats`).
    statuses: Mutex<BTreeMap<u16, u64>>,
    started: Instant,
}

impl Front {
    /// Counts a request answered with `status` (for `/stats`).
    fn count(&self, status: u16) {
        if let Ok(mut statuses) = self.statuses.lock() {
            *statuses.entry(status).or_default() += 1;
        }
    }
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let fields = a.live.fields()?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let tokens: Option<TokensInForce> = a
        .token_file
        .as_deref()
        .map(Tokens::read)
        .transpose()?
        .map(|t| Arc::new(std::sync::RwLock::new(t)));
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(Tls::load(cert, key)?)),
        _ => None,
    };
    let terminal = terminal(crate::args::ProgressArg::Auto, a.quiet);
    let mut index =
        crate::feed::open_index(&a.dir, Access::Write, &terminal).map_err(
            |e| match until_repaired(&e, &a.dir, "it stops here; run", "then start serve again") {
                Some(hint) => anyhow::anyhow!("{:#}\n  {hint}", anyhow::Error::new(e)),
                None => e.into(),
            },
        )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("neardup-serve")
        .build()
        .context("starting the server's threads")?;
    let listener = listen(&a.listen)
        .and_then(|listener| {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
        })
        .with_context(|| format!("listening on {}", a.listen))?;
    let address: Option<SocketAddr> = listener.local_addr().ok();
    // Printed even with --quiet: with port 0 it is the only way to learn the port.
    eprintln!(
        "neardup: serve: {} listening on {}://{}",
        neardup::report::shown_path(&a.dir),
        if tls.is_some() { "https" } else { "http" },
        address.map_or_else(|| a.listen.clone(), |x| x.to_string())
    );

    // A connection is a file descriptor: the soft limit (often 1,024) is raised toward
    // what --max-connections needs, as far as the hard limit lets it.
    let wanted = a.max_connections as u64 + SPARE_DESCRIPTORS;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted && !a.quiet => eprintln!(
            "neardup: warning: this process may open {limit} files, too few for \
             --max-connections {}: connections past about {} will wait for one to close; \
             raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-connections",
            a.max_connections,
            limit.saturating_sub(SPARE_DESCRIPTORS)
        ),
        Err(e) if !a.quiet => {
            eprintln!("neardup: warning: reading the limit of open files: {e}");
        }
        _ => {}
    }

    let stopping = Arc::new(AtomicBool::new(false));
    let shutdown = Arc::new(Notify::new());
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    // SIGHUP reloads the tokens and the certificate; without either it keeps its
    // default (it ends us).
    let mut signals = signal_hook::iterator::Signals::new(if tokens.is_some() || tls.is_some() {
        &[SIGINT, SIGTERM, SIGHUP][..]
    } else {
        &[SIGINT, SIGTERM][..]
    })
    .context("installing signal handlers")?;
    {
        let (stopping, shutdown) = (stopping.clone(), shutdown.clone());
        let reload = a.token_file.clone().zip(tokens.clone());
        let tls = tls.clone();
        let quiet = a.quiet;
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    if let Some((path, tokens)) = &reload {
                        reload_tokens(path, tokens, quiet);
                    }
                    if let Some(tls) = &tls {
                        reload_tls(tls, quiet);
                    }
                    continue;
                }
                if stopping.swap(true, Ordering::AcqRel) {
                    // The user insists: leave now. Answered articles are durable anyway.
                    std::process::exit(130);
                }
                shutdown.notify_one();
            }
        });
    }

    let (jobs, queue) = mpsc::channel::<Job>();
    let front = Arc::new(Front {
        jobs,
        fingerprinters: Arc::new(Mutex::new(
            (0..threads).map(|_| index.fingerprinter()).collect(),
        )),
        fingerprinting: Arc::new(Semaphore::new(threads)),
        fields,
        limit: a.max_body_bytes,
        read_timeout: Duration::from_secs(a.read_timeout),
        stopping: stopping.clone(),
        tokens,
        tls,
        connections: Arc::new(Semaphore::new(a.max_connections)),
        max_connections: a.max_connections,
        open: std::sync::atomic::AtomicUsize::new(0),
        statuses: Mutex::new(BTreeMap::new()),
        started: Instant::now(),
    });
    let committer = {
        let (live, quiet, shutdown) = (a.live.clone(), a.quiet, shutdown.clone());
        let dir = a.dir.clone();
        std::thread::spawn(move || {
            let mut counts = WatchCounts::default();
            let decided = commit_jobs(&mut index, &dir, &queue, &live, quiet, &mut counts);
            if decided.is_err() {
                // Stop taking requests; those waiting get a 500 as their replies drop.
                stopping.store(true, Ordering::Release);
                shutdown.notify_one();
            }
            drop(queue);
            (index, counts, decided)
        })
    };
    runtime.block_on(accept(listener, front, &shutdown, a.quiet));
    // Connections still open after the grace period are cut here; their tasks hold the last
    // senders of the queue, so the index's thread ends once it has stored what they sent.
    drop(runtime);
    let (index, mut counts, decided) = committer
        .join()
        .map_err(|_| anyhow::anyhow!("the index's thread panicked"))?;
    decided?;
    if !a.quiet {
        terminal.println(&counts.summary("serve", "", "time to answer a request", &index));
        if let Some(example) = &counts.ignored_date_example {
            // Those added are stored so; a /query stores nothing.
            terminal.println(&crate::feed::ignored_dates_note(
                counts.ignored_dates,
                example,
                true,
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The index's side: adds the articles of each group of jobs, makes the group durable,
/// then answers it. Returns when every sender is gone, with everything synced.
fn commit_jobs(
    index: &mut FeedIndex,
    dir: &std::path::Path,
    queue: &mpsc::Receiver<Job>,
    live: &LiveArgs,
    quiet: bool,
    counts: &mut WatchCounts,
) -> Result<()> {
    let mut unsynced: Option<neardup::feed::Written> = None;
    let mut last_sync = Instant::now();
    let mut compactor = Compactor::new(live.compact_every, index, "serve", quiet);
    let mut removals = Removals {
        quiet,
        ..Removals::default()
    };
    // Why the index takes no articles now (it could not be opened again for writing).
    let mut down: Option<Down> = None;
    loop {
        let first = match queue.recv_timeout(Duration::from_millis(100)) {
            Ok(job) => Some(job),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let idle = first.is_none();
        let turn = (|| -> Result<()> {
            if let Some(first) = first {
                commit_group(
                    first,
                    index,
                    queue,
                    live,
                    quiet,
                    counts,
                    &compactor,
                    &mut unsynced,
                    &mut removals,
                    &down,
                )?;
            }
            // Due whatever arrived: a server asked for /health more often than every
            // 100 ms is never idle, and must still sync and compact.
            if let Some(written) =
                unsynced.take_if(|_| idle || last_sync.elapsed() >= Duration::from_millis(100))
            {
                written.sync()?;
                last_sync = Instant::now();
            }
            // Every group is written before it is answered.
            compactor.maybe_compact(index, || Ok(()))?;
            removals.turn(index, compactor.is_running());
            Ok(())
        })();
        if let Err(e) = turn {
            // A failed write (a full disk, say) leaves the index in memory ahead of its
            // file: it is opened again from the file, which holds every group answered,
            // so the next request tries again rather than the service stopping.
            unsynced = None;
            compactor.abandon();
            removals.abandon(&format!("{e:#}"));
            down = reopen(index, dir, &e).err();
        }
    }
    // Whatever the durability, everything is on disk before serve exits.
    if let Some(written) = unsynced.take() {
        written.sync()?;
    }
    Ok(())
}

/// Why the index takes no articles after a failed write: it could not be opened again
/// as a writer.
struct Down {
    why: String,
    /// Whether `index` is a reader of the file; if not, it is the failed index, whose
    /// memory holds articles never stored, so queries are refused too.
    readable: bool,
}

/// Opens the index at `dir` again as its writer after `failure`, in place of `index`
/// (a reader of it meanwhile, since our own lock must go first). The writer cuts off
/// the unfinished write, as after a crash. On failure `index` is left a reader, or as it
/// was, and the reason is returned (for /health; articles are refused until it works).
fn reopen(
    index: &mut FeedIndex,
    dir: &std::path::Path,
    failure: &anyhow::Error,
) -> Result<(), Down> {
    eprintln!(
        "neardup: warning: serve: {failure:#}; the requests of this group were answered 503 \
         and nothing of them acknowledged; opening the index again to go on"
    );
    let silent = &neardup::progress::Silent;
    let mut readable = false;
    let opened = FeedIndex::open(dir, Access::Read, silent).and_then(|reader| {
        drop(std::mem::replace(index, reader));
        readable = true;
        FeedIndex::open(dir, Access::Write, silent)
    });
    match opened {
        Ok(writer) => {
            *index = writer;
            Ok(())
        }
        Err(e) => {
            let then = match until_repaired(
                &e,
                dir,
                "stop this server (it holds the index's lock) and run",
                "then start it again",
            ) {
                Some(hint) => format!("{hint}; until then articles are refused (503)"),
                None => "articles are refused (503) and every later request tries again".into(),
            };
            let why = format!(
                "the index could not be opened again for writing after a failed write: {:#}; \
                 {then}",
                anyhow::Error::new(e)
            );
            eprintln!("neardup: warning: serve: {why}");
            Err(Down { why, readable })
        }
    }
}

/// What serve says to do when `e` is a damaged index (`None` otherwise): `stop` (serve
/// cannot repair it, and `index repair` needs the lock serve would hold), run the
/// repair, `then` what.
fn until_repaired(
    e: &neardup::Error,
    dir: &std::path::Path,
    stop: &str,
    then: &str,
) -> Option<String> {
    matches!(e.kind(), neardup::ErrorKind::Damaged { .. }).then(|| {
        format!(
            "serve cannot use a damaged index: {stop} 'neardup index repair {}', {then}",
            neardup::report::shown_path(dir)
        )
    })
}

/// Answers `first` and whatever else has already arrived (up to `--max-group` articles)
/// as one group: adds its articles, makes them durable as `--durability` says (with
/// process durability, `unsynced` keeps the write to sync later), then replies.
#[allow(clippy::too_many_arguments)] // the index thread's state, passed apart
fn commit_group(
    first: Job,
    index: &mut FeedIndex,
    queue: &mpsc::Receiver<Job>,
    live: &LiveArgs,
    quiet: bool,
    counts: &mut WatchCounts,
    compactor: &Compactor,
    unsynced: &mut Option<neardup::feed::Written>,
    removals: &mut Removals,
    down: &Option<Down>,
) -> Result<()> {
    // Whatever has already arrived joins this commit group.
    let mut group = vec![first];
    let mut articles = 0;
    while articles < live.max_group {
        match queue.try_recv() {
            Ok(job) => {
                if let Job::Articles { lines, .. } = &job {
                    articles += lines.len();
                }
                group.push(job);
            }
            Err(_) => break,
        }
    }
    let mut answered = Vec::with_capacity(group.len());
    // Articles not answered once the group failed: told why, nothing acknowledged.
    let mut refused = Vec::new();
    let mut failed: Option<anyhow::Error> = None;
    let mut stored = false;
    for job in group {
        match job {
            Job::Count { reply } => {
                let _ = reply.send((index.len(), down.as_ref().map(|d| d.why.clone())));
            }
            Job::Remove { ids, reply } => removals.waiting.push_back((ids, reply)),
            Job::Stats { reply } => {
                let _ = reply.send(served_stats(index, counts, compactor, removals));
            }
            Job::Articles {
                lines,
                query,
                read_at,
                reply,
            } => {
                if let Some(d) = down.as_ref().filter(|d| !d.readable) {
                    // Refused, and the reopening tried again.
                    failed = Some(anyhow::anyhow!("{}", d.why));
                }
                if failed.is_some() {
                    refused.push(reply);
                    continue;
                }
                stored |= !query;
                let decided = (|| -> Result<Vec<u8>> {
                    let mut out = Vec::new();
                    for (number, prepared) in lines {
                        let answer = match prepared {
                            Ok(article) if query => check(index, article, number)?,
                            Ok(article) => commit(index, article, number)?,
                            Err(rejected) => rejected,
                        };
                        acknowledge(
                            &mut out,
                            &answer,
                            counts,
                            live.all_matches,
                            quiet,
                            "request",
                        )?;
                    }
                    Ok(out)
                })();
                match decided {
                    Ok(out) => answered.push((out, read_at, reply)),
                    Err(e) => {
                        failed = Some(e);
                        refused.push(reply);
                    }
                }
            }
        }
    }
    // Durable first, then answered. (Queries store nothing; what they matched was made
    // durable by its own group.)
    if stored && failed.is_none() {
        let written = index.write().and_then(|syncer| match live.durability {
            DurabilityArg::Disk => syncer.sync(),
            // Synced by the caller, within 100 ms; a sync covers every earlier write.
            DurabilityArg::Process => syncer.write().map(|w| *unsynced = Some(w)),
        });
        failed = written.err().map(anyhow::Error::new);
    }
    if let Some(e) = failed {
        // The whole group goes unanswered: its articles are not all stored, and a query
        // may have matched one of them.
        let why = format!("{e:#}");
        for reply in refused
            .into_iter()
            .chain(answered.into_iter().map(|(.., reply)| reply))
        {
            let _ = reply.send(Err(why.clone()));
        }
        return Err(e);
    }
    let now = Instant::now();
    for (out, read_at, reply) in answered {
        // One sample a request, whatever its articles: one bulk request must not set the
        // median of all the small ones.
        counts.latencies.record(now.duration_since(read_at), 1);
        let _ = reply.send(Ok(out));
    }
    Ok(())
}

/// `--listen`: HOST:PORT (a name, an IPv4 address, or an IPv6 one in brackets). Whether
/// the host resolves is found when listening.
fn parse_listen(s: &str) -> Result<String, String> {
    let usable_host = |host: &str| match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        }
    };
    let usable = s
        .rsplit_once(':')
        .is_some_and(|(host, port)| usable_host(host) && port.parse::<u16>().is_ok());
    if usable {
        Ok(s.to_string())
    } else {
        Err(
            "give HOST:PORT, e.g. 127.0.0.1:8080, [::1]:8080 or 0.0.0.0:0 (port 0: any free port)"
                .into(),
        )
    }
}

/// A listening socket on `address`, with SO_REUSEADDR so that a restarted server can take
/// its port at once.
fn listen(address: &str) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let address = std::net::ToSocketAddrs::to_socket_addrs(address)?
        .next()
        .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Accepts connections until `shutdown`, then waits for the requests in flight (at most
/// the read timeout) and returns.
async fn accept(
    listener: tokio::net::TcpListener,
    front: Arc<Front>,
    shutdown: &Notify,
    quiet: bool,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // A client may shut down its sending side once its request is sent, and still wait
    // for the answer: without half_close hyper took that for a closed connection.
    http.timer(TokioTimer::new())
        .header_read_timeout(front.read_timeout)
        .half_close(true);
    loop {
        // A free connection first: past --max-connections, clients wait in the backlog.
        let permit = tokio::select! {
            permit = front.connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // closed: never, the front owns it
            },
            () = shutdown.notified() => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Answers go out at once: with Nagle's algorithm an answer's last
                    // segment would wait for the client's delayed ACK (40 ms).
                    let _ = stream.set_nodelay(true);
                    // A client that stops reading its answer holds a task, a socket and
                    // the answer for no longer than a stalled upload does.
                    let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
                    stream.set_write_timeout(Some(front.read_timeout));
                    let open = OpenConnection::new(&front, permit);
                    let (front, http, watcher) = (front.clone(), http.clone(), graceful.watcher());
                    tokio::spawn(async move {
                        let mut stream = Box::pin(stream);
                        // The handshake runs in the connection's task: a slow one keeps
                        // no one else waiting, and one that fails ends only it.
                        let io: Box<dyn Io> = match front.tls.as_ref().map(|t| t.acceptor()) {
                            None => Box::new(stream),
                            Some(acceptor) => {
                                if !speaks_tls(&mut stream, &front).await {
                                    return;
                                }
                                match tokio::time::timeout(
                                    front.read_timeout,
                                    acceptor.accept(stream),
                                )
                                .await
                                {
                                    Ok(Ok(tls)) => Box::new(tls),
                                    _ => return, // too slow, or no TLS we speak
                                }
                            }
                        };
                        let service = hyper::service::service_fn(move |request| {
                            handle(request, front.clone())
                        });
                        let connection = http.serve_connection(TokioIo::new(io), service);
                        // A client that went away is not the server's problem.
                        let _ = watcher.watch(connection).await;
                        drop(open);
                    });
                }
                Err(e) => {
                    // Out of file descriptors, say: wait for some to close, do not spin.
                    if !quiet {
                        eprintln!("neardup: warning: accepting a connection: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = shutdown.notified() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(front.read_timeout, graceful.shutdown()).await;
}

/// An accepted connection: its permit of `--max-connections`, and counted open for
/// `/stats` until it is dropped, when its task ends.
struct OpenConnection {
    front: Arc<Front>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(front: &Arc<Front>, permit: tokio::sync::OwnedSemaphorePermit) -> OpenConnection {
        front.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection {
            front: front.clone(),
            _permit: permit,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.front.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the client of an HTTPS server begins a TLS handshake. One that sends plain
/// HTTP instead is answered 400 in plain HTTP, saying so, rather than cut off.
async fn speaks_tls(
    stream: &mut std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<tokio::net::TcpStream>>>,
    front: &Front,
) -> bool {
    // A TLS record of type handshake.
    const HANDSHAKE: u8 = 0x16;
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(front.read_timeout, stream.get_ref().peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) if first[0] == HANDSHAKE => true,
        Ok(Ok(1)) => {
            let body = "{\"error\":\"this server speaks HTTPS: ask for https://, not http://\"}\n";
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            // What the client sent is read and dropped until it closes: a socket closed
            // with unread bytes is reset, and the reset can beat the answer to the client.
            let drain = async {
                let mut sink = [0u8; 4096];
                while let Ok(1..) = tokio::io::AsyncReadExt::read(stream, &mut sink).await {}
            };
            let _ =
                tokio::time::timeout(front.read_timeout.min(Duration::from_secs(5)), drain).await;
            front.count(400);
            false
        }
        _ => false,
    }
}

type Answered = Response<Full<Bytes>>;

/// A connection's byte stream, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Answers one request, compressed as its `Accept-Encoding` allows, and counts its
/// status.
async fn handle(request: Request<Incoming>, front: Arc<Front>) -> Result<Answered, Infallible> {
    let encoding = BodyEncoding::accepted(&request);
    let answer = route(request, &front).await;
    front.count(answer.status().as_u16());
    Ok(compress(answer, encoding).await)
}

/// Answers shorter than this go out plain: compressing them saves less than its headers.
const SMALLEST_COMPRESSED_ANSWER: usize = 1024;

/// `answer` with its body compressed in `encoding` (on a blocking thread: a bulk
/// request's verdicts run to megabytes), when that is worth it.
async fn compress(answer: Answered, encoding: BodyEncoding) -> Answered {
    let (mut parts, body) = answer.into_parts();
    parts.headers.insert(
        hyper::header::VARY,
        HeaderValue::from_static("accept-encoding"),
    );
    if encoding == BodyEncoding::Identity {
        return Response::from_parts(parts, body);
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    if bytes.len() < SMALLEST_COMPRESSED_ANSWER {
        return Response::from_parts(parts, Full::new(bytes));
    }
    let plain = bytes.clone();
    match tokio::task::spawn_blocking(move || encoding.encode(&plain)).await {
        Ok(Ok(compressed)) => {
            parts.headers.insert(
                hyper::header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.name()),
            );
            Response::from_parts(parts, Full::new(compressed.into()))
        }
        // Compressing into memory does not fail; if it did, the answer goes out plain.
        _ => Response::from_parts(parts, Full::new(bytes)),
    }
}

async fn route(request: Request<Incoming>, front: &Front) -> Answered {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    if let Some(answer) = refusal(&request, front, &path) {
        // Drained, not read: a body left unread would reset the connection, and the
        // client could lose the refusal with it.
        linger(request.into_body());
        return answer;
    }
    match (&method, path.as_str()) {
        _ if front.stopping.load(Ordering::Acquire) => error(503, "the server is stopping"),
        (&Method::POST, "/articles") => articles(request, front, false).await,
        (&Method::POST, "/query") => articles(request, front, true).await,
        (&Method::POST, "/remove") => remove(request, front).await,
        (&Method::GET, "/stats") => match ask(front, |reply| Job::Stats { reply }).await {
            Some(mut stats) => {
                stats.uptime_seconds = front.started.elapsed().as_secs();
                stats.requests = front.statuses.lock().map(|s| s.clone()).unwrap_or_default();
                stats.connections = Connections {
                    open: front.open.load(Ordering::Relaxed),
                    max: front.max_connections,
                };
                let mut line = Vec::new();
                let _ = neardup::feed::write_json_line(&mut line, &stats); // into memory
                json(200, line)
            }
            None => error(503, "the server is stopping"),
        },
        (&Method::GET | &Method::HEAD, "/health") => {
            match ask(front, |reply| Job::Count { reply }).await {
                Some((n, down)) => {
                    let status = if down.is_none() { 200 } else { 503 };
                    // One JSON object, for GET and HEAD alike: not a stream of lines.
                    let body = match down {
                        None => format!("{{\"status\":\"ok\",\"articles\":{n}}}\n"),
                        // Still answering reads, not taking articles: not healthy.
                        Some(why) => format!(
                            "{{\"status\":\"read-only\",\"articles\":{n},\"error\":{}}}\n",
                            serde_json::Value::from(why)
                        ),
                    };
                    let mut answer = json(status, body);
                    answer
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    answer
                }
                None => error(503, "the server is stopping"),
            }
        }
        (_, "/articles") => not_allowed("POST", "/articles takes POST"),
        (_, "/query") => not_allowed("POST", "/query takes POST"),
        (_, "/remove") => not_allowed("POST", "/remove takes POST"),
        (_, "/health") => not_allowed("GET, HEAD", "/health takes GET (or HEAD)"),
        (_, "/stats") => not_allowed("GET", "/stats takes GET"),
        (_, path) => error(
            404,
            &format!(
                "no such endpoint: {path} (POST /articles, POST /query, POST /remove, GET \
                 /health, GET /stats)"
            ),
        ),
    }
}

/// The 401 or 403 for a request its token (or the lack of one) does not allow; `None`
/// when it may go on. `/health` is open to all.
fn refusal(request: &Request<Incoming>, front: &Front, path: &str) -> Option<Answered> {
    if path == "/health" {
        return None;
    }
    match grant(request, front) {
        Granted::Open => None,
        Granted::Token(grant) => Endpoint::of_path(path)
            .filter(|&endpoint| !grant.allows(endpoint))
            .map(|endpoint| {
                error(
                    403,
                    &format!(
                        "this token may not use /{} (its line in --token-file allows {})",
                        endpoint.name(),
                        grant.paths()
                    ),
                )
            }),
        Granted::Refused => {
            let mut answer = error(
                401,
                "this server wants 'Authorization: Bearer TOKEN' with a token of its \
                 --token-file",
            );
            answer.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"neardup\""),
            );
            Some(answer)
        }
    }
}

/// What a request's token lets it do.
enum Granted {
    /// There is no `--token-file`: everything.
    Open,
    /// One of the file's tokens: what its line allows.
    Token(Grant),
    /// No token, or none of the file's.
    Refused,
}

/// What the `Authorization: Bearer` token of `request` may use.
fn grant(request: &Request<Incoming>, front: &Front) -> Granted {
    let Some(tokens) = &front.tokens else {
        return Granted::Open;
    };
    let given = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| crate::tokens::bearer(v.as_bytes()));
    match (given, tokens.read()) {
        (Some(given), Ok(tokens)) => tokens
            .grant_of(given)
            .map_or(Granted::Refused, Granted::Token),
        _ => Granted::Refused,
    }
}

/// Reads the token file again (SIGHUP) and puts its tokens in force; a file that cannot
/// be read or holds none leaves the tokens in force as they were, with a warning.
fn reload_tokens(path: &std::path::Path, tokens: &TokensInForce, quiet: bool) {
    match Tokens::read(path) {
        Ok(read) => {
            let count = read.len();
            if let Ok(mut in_force) = tokens.write() {
                *in_force = read;
            }
            if !quiet {
                eprintln!(
                    "neardup: serve: read the token file {} again: {count} token{} in force",
                    neardup::report::shown_path(path),
                    if count == 1 { "" } else { "s" }
                );
            }
        }
        // Warned even with --quiet: the operator asked for a change that did not happen.
        Err(e) => eprintln!(
            "neardup: warning: serve: the tokens in force are kept: {:#}",
            e
        ),
    }
}

/// Reads the TLS certificate and key again (SIGHUP); on an error the ones in force stay.
fn reload_tls(tls: &Tls, quiet: bool) {
    match tls.reload() {
        Ok(()) if !quiet => eprintln!("neardup: serve: read {} again", tls.describe()),
        Ok(()) => {}
        // Warned even with --quiet, as for the tokens.
        Err(e) => eprintln!(
            "neardup: warning: serve: {} in force are kept: {e:#}",
            tls.describe()
        ),
    }
}

/// What the index's thread answers to the job `job(reply)`; `None` once it has stopped.
async fn ask<T>(front: &Front, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    front.jobs.send(job(reply)).ok()?;
    answer.await.ok()
}

/// `/stats`: the index's statistics (as `index stats` gives them) and what this server
/// has answered since it started.
#[derive(Serialize)]
struct ServedStats {
    schema_version: u32,
    uptime_seconds: u64,
    /// Requests answered, by status.
    requests: BTreeMap<u16, u64>,
    /// Connections open now (this one included) and `--max-connections`.
    connections: Connections,
    /// Articles answered, by verdict (`checked`: by `/query`).
    articles: ArticleCounts,
    /// Time to answer a request to /articles or /query in milliseconds, from its body
    /// read to its answer (each request counts once, whatever its articles); `None`
    /// before the first.
    answer_ms: Option<AnswerTimes>,
    /// Compaction while running (`--compact-every`).
    compactions: CompactionRecord,
    /// `POST /remove` requests.
    removals: RemovalRecord,
    index: StatsRecord,
}

#[derive(Serialize, Default)]
struct Connections {
    open: usize,
    max: usize,
}

#[derive(Serialize)]
struct ArticleCounts {
    new: u64,
    duplicates: u64,
    rewrites: u64,
    already_indexed: u64,
    rejected: u64,
    checked: u64,
    /// Date fields not used (the article counted as undated; its verdict says why).
    dates_ignored: u64,
}

#[derive(Serialize)]
struct AnswerTimes {
    /// Requests timed.
    requests: u64,
    median: f64,
    p99: f64,
    max: f64,
}

/// What the index's thread knows of `/stats` (the caller adds the uptime and requests).
fn served_stats(
    index: &FeedIndex,
    counts: &WatchCounts,
    compactor: &Compactor,
    removals: &Removals,
) -> ServedStats {
    ServedStats {
        schema_version: neardup::report::SCHEMA_VERSION,
        uptime_seconds: 0,
        requests: BTreeMap::new(),
        connections: Connections::default(),
        articles: ArticleCounts {
            new: counts.new,
            duplicates: counts.duplicates,
            rewrites: counts.rewrites,
            already_indexed: counts.already_indexed,
            rejected: counts.rejected,
            checked: counts.checked,
            dates_ignored: counts.ignored_dates,
        },
        answer_ms: counts
            .latencies
            .percentiles_ms()
            .map(|[median, p99, max]| AnswerTimes {
                requests: counts.latencies.samples(),
                median,
                p99,
                max,
            }),
        compactions: compactor.record(),
        removals: removals.record(),
        index: StatsRecord::new(&index.stats()),
    }
}

/// The whole body of `request`, decompressed as its `Content-Encoding` says, within
/// `--max-body-bytes` and `--read-timeout`; otherwise the refusal to answer with.
async fn read_body(request: Request<Incoming>, front: &Front) -> Result<Vec<u8>, Answered> {
    let limit = front.limit;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let encoding = match BodyEncoding::of(&request) {
        Ok(encoding) => encoding,
        Err(named) => {
            linger(request.into_body());
            return Err(error(
                415,
                &format!(
                    "Content-Encoding {named:?} is not understood: send the body plain, gzip or \
                     zstd; nothing of this request was stored"
                ),
            ));
        }
    };
    let mut body = request.into_body();
    let too_large = || {
        error(
            413,
            &format!("the body exceeds --max-body-bytes ({limit} bytes)"),
        )
    };
    if declared.is_some_and(|n| n > limit) {
        linger(body);
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    loop {
        match tokio::time::timeout(front.read_timeout, body.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if (bytes.len() + data.len()) as u64 > limit {
                        linger(body);
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(e))) => {
                // The source says why ("end of file before message length reached").
                let why = e
                    .source()
                    .map_or_else(|| e.to_string(), |s| format!("{e}: {s}"));
                return Err(error(
                    400,
                    &format!("reading the body: {why}; nothing of this request was stored"),
                ));
            }
            Err(_) => {
                return Err(error(
                    408,
                    &format!(
                        "the body stalled for {} s (--read-timeout); nothing of this request \
                         was stored",
                        front.read_timeout.as_secs()
                    ),
                ));
            }
        }
    }
    match encoding {
        BodyEncoding::Identity => Ok(bytes),
        compressed => {
            let decoded = tokio::task::spawn_blocking(move || compressed.decode(&bytes, limit));
            match decoded.await {
                Ok(Ok(Some(bytes))) => Ok(bytes),
                Ok(Ok(None)) => Err(error(
                    413,
                    &format!(
                        "the body decompresses to more than --max-body-bytes ({limit} \
                             bytes); nothing of this request was stored"
                    ),
                )),
                Ok(Err(e)) => Err(error(
                    400,
                    &format!(
                        "the body is not valid {}: {e}; nothing of this request was stored",
                        compressed.name()
                    ),
                )),
                Err(_) => Err(error(
                    500,
                    "decompressing the body failed; nothing was stored",
                )),
            }
        }
    }
}

/// `POST /articles`: the body's lines, decided and stored, answered line by line; with
/// `query` (`POST /query`), decided only.
async fn articles(request: Request<Incoming>, front: &Front, query: bool) -> Answered {
    let bytes = match read_body(request, front).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let read_at = Instant::now();
    let lines = match fingerprint(front, bytes).await {
        Some(lines) => lines,
        None => return error(500, "fingerprinting the body failed; nothing was stored"),
    };
    if lines.is_empty() {
        return error(
            400,
            "the body holds no article (JSON lines, one article each)",
        );
    }
    let (reply, answer) = oneshot::channel();
    let job = Job::Articles {
        lines,
        query,
        read_at,
        reply,
    };
    if front.jobs.send(job).is_err() {
        return error(503, "the server is stopping");
    }
    match answer.await {
        Ok(Ok(out)) => json(200, out),
        // A failed write: the index is opened again from disk, and a later request tries
        // again. Articles of this one may be stored: sent again, they say so.
        Ok(Err(why)) => error(
            503,
            &format!(
                "storing the articles failed: {why}; nothing of this request was \
                 acknowledged: send it again later (its articles already stored are answered \
                 the verdicts they were stored with, marked \"indexed\":true)"
            ),
        ),
        Err(_) => error(503, "the server is stopping"),
    }
}

/// `POST /remove`: the body's ids (one per line) taken out of the index, answered once
/// they are gone.
async fn remove(request: Request<Incoming>, front: &Front) -> Answered {
    let bytes = match read_body(request, front).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return error(400, "the body is not UTF-8 text; nothing was removed");
    };
    let ids = match crate::feed::ids_of_lines(&text) {
        Ok(ids) => crate::feed::each_once(ids),
        Err(e) => return error(400, &format!("line {e}; nothing was removed")),
    };
    if ids.is_empty() {
        return error(
            400,
            "the body holds no id (one per line); nothing was removed",
        );
    }
    match ask(front, |reply| Job::Remove { ids, reply }).await {
        Some(Ok(out)) => json(200, out),
        Some(Err(e)) => error(500, &format!("removing failed: {e}; nothing was removed")),
        None => error(
            503,
            "the server stopped before the removal finished; nothing was removed",
        ),
    }
}

/// How a request's body is compressed (its `Content-Encoding`), or an answer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyEncoding {
    Identity,
    Gzip,
    Zstd,
}

impl BodyEncoding {
    /// The request's encoding, or the name of one not understood.
    fn of(request: &Request<Incoming>) -> Result<BodyEncoding, String> {
        let mut found = BodyEncoding::Identity;
        for header in request.headers().get_all(hyper::header::CONTENT_ENCODING) {
            let text = header.to_str().map_err(|_| "(not ASCII)".to_string())?;
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let this = match name.to_ascii_lowercase().as_str() {
                    "identity" => continue,
                    "gzip" | "x-gzip" => BodyEncoding::Gzip,
                    "zstd" => BodyEncoding::Zstd,
                    _ => return Err(name.to_string()),
                };
                if found != BodyEncoding::Identity {
                    return Err(text.to_string()); // compressed twice
                }
                found = this;
            }
        }
        Ok(found)
    }

    /// The encoding to answer `request` in: zstd if its `Accept-Encoding` takes it (the
    /// faster of the two), else gzip, else none. A coding listed with `q=0` is refused;
    /// `*` stands for gzip when gzip is not listed.
    fn accepted(request: &Request<Incoming>) -> BodyEncoding {
        let (mut zstd, mut gzip, mut any) = (None, None, None);
        for header in request.headers().get_all(hyper::header::ACCEPT_ENCODING) {
            let Ok(text) = header.to_str() else { continue };
            for item in text.split(',') {
                let mut fields = item.split(';').map(str::trim);
                let name = fields.next().unwrap_or_default().to_ascii_lowercase();
                let refused = fields.any(|f| {
                    f.strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                match name.as_str() {
                    "zstd" => zstd = Some(!refused),
                    "gzip" | "x-gzip" => gzip = Some(!refused),
                    "*" => any = Some(!refused),
                    _ => {}
                }
            }
        }
        if zstd == Some(true) {
            BodyEncoding::Zstd
        } else if gzip.or(any) == Some(true) {
            BodyEncoding::Gzip
        } else {
            BodyEncoding::Identity
        }
    }

    /// `body` compressed, at the fast levels: an answer is made while its client waits.
    fn encode(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        match self {
            BodyEncoding::Identity => Ok(body.to_vec()),
            BodyEncoding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::fast(),
                );
                encoder.write_all(body)?;
                encoder.finish()
            }
            BodyEncoding::Zstd => zstd::bulk::compress(body, 1),
        }
    }

    fn name(self) -> &'static str {
        match self {
            BodyEncoding::Identity => "identity",
            BodyEncoding::Gzip => "gzip",
            BodyEncoding::Zstd => "zstd",
        }
    }

    /// The decompressed body; `None` when it is longer than `limit` (a small body can
    /// decompress to gigabytes).
    fn decode(self, body: &[u8], limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let decoder: Box<dyn Read + '_> = match self {
            BodyEncoding::Identity => return Ok(Some(body.to_vec())),
            BodyEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
            BodyEncoding::Zstd => Box::new(zstd::stream::read::Decoder::new(body)?),
        };
        let mut out = Vec::new();
        decoder.take(limit + 1).read_to_end(&mut out)?;
        Ok((out.len() as u64 <= limit).then_some(out))
    }
}

/// The body's non-blank lines, each fingerprinted or rejected, on a blocking thread (at
/// most `--threads` at once); `None` if that thread panicked.
async fn fingerprint(front: &Front, body: Vec<u8>) -> Option<Vec<(u64, Result<Article, Answer>)>> {
    let permit = front.fingerprinting.clone().acquire_owned().await.ok()?;
    let pool = Arc::clone(&front.fingerprinters);
    let mut fingerprinter = pool.lock().ok()?.pop()?;
    let fields = front.fields.clone();
    // The blocking thread gives the fingerprinter and the permit back itself: this future
    // is dropped when its client gives up, and once lost them with it. If the thread
    // panics, both stay gone (the permit is never released) and the others go on.
    let permit = std::mem::ManuallyDrop::new(permit);
    let done = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            let mut line = line.strip_suffix(b"\r").unwrap_or(line);
            if i == 0 {
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                let number = i as u64 + 1;
                lines.push((number, prepare(&mut fingerprinter, &fields, number, line)));
            }
        }
        if let Ok(mut pool) = pool.lock() {
            pool.push(fingerprinter);
        }
        drop(std::mem::ManuallyDrop::into_inner(permit));
        lines
    })
    .await;
    done.ok()
}

/// Reads and drops what a refused request still sends, for a while: a socket closed with
/// unread data resets the connection, and the client might lose the answer (nginx's
/// "lingering close").
fn linger(mut body: Incoming) {
    tokio::spawn(async move {
        let drained = async { while let Some(Ok(_)) = body.frame().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(30), drained).await;
    });
}

fn json(status: u16, body: impl Into<Bytes>) -> Answered {
    let mut answer = Response::new(Full::new(body.into()));
    *answer.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    answer
}

/// A 405 with the `Allow` header HTTP requires.
fn not_allowed(allow: &'static str, message: &str) -> Answered {
    let mut answer = error(405, message);
    answer
        .headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    answer
}

fn error(status: u16, message: &str) -> Answered {
    json(
        status,
        format!("{}\n", serde_json::json!({ "error": message })),
    )
}
