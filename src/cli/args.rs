//! Command-line arguments (clap). Secrets are never flag values: passphrases come from files,
//! environment variables or a prompt.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rempart",
    version,
    about = "Encrypted, deduplicated backups with restore drills and PCA/PRA evidence",
    long_about = "rempart backs up files and databases into an encrypted, compressed, deduplicated \
                  repository (a local folder or an S3 bucket), restores them, checks them, and \
                  proves on a schedule that they can be recovered.\n\nExit codes: 0 success, 1 failure, \
                  2 usage error, 3 partial, 4 integrity damage, 5 repository locked, 6 wrong passphrase \
                  (docs/cli.md)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Repository: a local folder or s3://BUCKET/PREFIX.
    #[arg(
        short = 'r',
        long = "repo",
        env = "REMPART_REPOSITORY",
        global = true,
        help_heading = "Global options"
    )]
    pub repo: Option<String>,
    /// File holding the repository passphrase (first line). Also REMPART_PASSWORD_FILE, or
    /// REMPART_PASSWORD; otherwise rempart asks on the terminal.
    #[arg(long, env = "REMPART_PASSWORD_FILE", global = true, help_heading = "Global options")]
    pub password_file: Option<PathBuf>,
    /// Open the repository with a recovery file from 'rempart key export' instead of its key
    /// objects (the passphrase is still needed).
    #[arg(long, env = "REMPART_RECOVERY_FILE", global = true, help_heading = "Global options")]
    pub recovery_file: Option<PathBuf>,
    /// Configuration file supplying defaults for the folders and the daemon (docs/cli.md);
    /// flags and environment variables win over it.
    #[arg(long, env = "REMPART_CONFIG", global = true, help_heading = "Global options")]
    pub config: Option<PathBuf>,
    /// State directory (caches, catalog, evidence).
    #[arg(long, env = "REMPART_STATE_DIR", global = true, help_heading = "Global options")]
    pub state_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// The folder of job files (default: the configuration file's jobs_dir, else jobs/ in the
    /// current folder).
    #[arg(long, env = "REMPART_JOBS_DIR", global = true, help_heading = "Global options")]
    pub jobs: Option<PathBuf>,
    /// Key material of the jobs (default: keys/ beside the jobs folder).
    #[arg(long, env = "REMPART_KEYS_DIR", global = true, help_heading = "Global options")]
    pub keys: Option<PathBuf>,
    /// Reading commands (snapshots, ls, restore, check) write no lock object. Needed on a
    /// repository that cannot be written (detected by itself on read-only mounts); the risk: a
    /// prune running meanwhile elsewhere could delete data being read.
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_lock: bool,
    /// Read an S3 repository exactly as it was at TIME (RFC 3339, e.g. 2026-11-30T07:00:00Z),
    /// from its bucket's object versions: objects deleted or overwritten since are read as
    /// they were. Read-only; for snapshots, ls, restore, check, find, diff, dump, stats.
    #[arg(long, env = "REMPART_AS_OF", value_name = "TIME", value_parser = parse_as_of, global = true, help_heading = "Global options")]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Limit uploads to the repository to this many KiB/s.
    #[arg(
        long,
        env = "REMPART_LIMIT_UPLOAD",
        value_name = "KIB_S",
        global = true,
        help_heading = "Global options"
    )]
    pub limit_upload: Option<u64>,
    /// Limit downloads from the repository to this many KiB/s.
    #[arg(
        long,
        env = "REMPART_LIMIT_DOWNLOAD",
        value_name = "KIB_S",
        global = true,
        help_heading = "Global options"
    )]
    pub limit_download: Option<u64>,
    /// Print only errors.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// Log lines as text, or as one JSON object per line (with the job, step and run id of the
    /// run they belong to) for journald and log shippers.
    #[arg(long, env = "REMPART_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text", global = true, help_heading = "Global options")]
    pub log_format: String,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Global options")]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up files and folders into a new snapshot.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the entries of a snapshot.
    Ls(LsArgs),
    /// Find files and folders by name or path pattern across snapshots.
    Find(FindArgs),
    /// What changed between two snapshots (added, removed, modified, metadata).
    Diff(DiffArgs),
    /// Sizes: what snapshots restore to, what they use after deduplication and compression.
    Stats(StatsArgs),
    /// Write one file of a snapshot to standard output, or a folder as a tar archive.
    Dump(DumpArgs),
    /// Add, remove or set the tags of snapshots.
    Tag(TagArgs),
    /// Copy snapshots into another repository (re-encrypted with its keys; only what it lacks
    /// is sent).
    Copy(CopyArgs),
    /// Show the snapshots as a read-only file system (FUSE) until Ctrl-C or umount:
    /// snapshots/ID/, hosts/HOST/, tags/TAG/, latest.
    Mount {
        /// An empty folder to mount on.
        mountpoint: PathBuf,
    },
    /// Restore a snapshot into a folder.
    Restore(RestoreArgs),
    /// Manage the repository's keys (passphrases) and export a recovery file.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Remove stale locks (left by processes that died).
    Unlock(UnlockArgs),
    /// S3 Object Lock: what the bucket enforces, and extending the locks of live objects.
    #[command(subcommand)]
    Immutable(ImmutableCommand),
    /// Verify the repository's structure and, on request, its data.
    Check(CheckArgs),
    /// List or validate job files.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Run one step of a job now, exactly as the daemon would, and record it.
    Run(RunArgs),
    /// Run the jobs on their schedules; serve the dashboard and metrics.
    Daemon(DaemonArgs),
    /// Restore-drill a job: prove its backup restores, within its objectives, and record it.
    Drill(DrillArgs),
    /// Readiness of every job (VERIFIED, NEEDS VERIFIED, NOT VERIFIED) with the reason.
    Status,
    /// The PRA readiness report: objectives against measurements, drills, evidence.
    Report(ReportArgs),
    /// The tamper-evident evidence ledger.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Remove snapshots that a retention policy does not keep.
    Forget(ForgetArgs),
    /// Free the space of data no snapshot uses (two-phase: marks now, deletes later).
    Prune(PruneArgs),
    /// The catalog of runs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Rebuild the index, or rewrite snapshots without what can no longer be read.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Print the shell completion script for bash, zsh or fish.
    Completions {
        /// The shell.
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Write the manual pages (rempart.1 and one per command) into a folder.
    Man {
        /// The folder (created when missing).
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// List the jobs with their sources, repository and schedules.
    List,
    /// Validate job files (a folder, default --jobs): syntax, keys, schedules, time zones,
    /// key material, and that each repository is reachable.
    Validate {
        /// Folder of job files.
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job's name.
    pub job: String,
    /// The step to run (a backup is followed by the copy step when the job's copies have no
    /// schedule of their own, as in the daemon).
    #[arg(long, default_value = "backup", value_parser = ["backup", "check", "prune", "drill", "copy", "ransomware"])]
    pub step: String,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The period covered, counted back from now.
    #[arg(long, default_value = "90d")]
    pub since: String,
    /// Only these jobs (repeatable; default: all).
    #[arg(long = "job", id = "only_jobs")]
    pub only: Vec<String>,
    /// Output format: a self-contained HTML page, Markdown, or JSON (schema in docs/).
    #[arg(long, default_value = "html", value_parser = ["html", "md", "json"])]
    pub format: String,
    /// Language of the text (English or French).
    #[arg(long, default_value = "en", value_parser = ["en", "fr"])]
    pub lang: String,
    /// Output file (default: standard output).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// The fleet report: every host and job that writes into the repository (-r), from the
    /// repository alone (no job files, no catalog).
    #[arg(long, conflicts_with = "only_jobs")]
    pub fleet: bool,
    /// With --fleet: also count the chains signed by this evidence key fingerprint (repeatable;
    /// added to [evidence] pinned_keys).
    #[arg(long = "pin", value_name = "FINGERPRINT", requires = "fleet")]
    pub pin: Vec<String>,
    /// With --fleet: an earlier fleet report (JSON) that anchors every chain it saw: a chain
    /// gone, shorter, or rewritten since is a finding.
    #[arg(long, value_name = "FILE", requires = "fleet")]
    pub previous: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The job's name.
    pub job: String,
    /// Which snapshot: latest, random, or an id (prefix).
    #[arg(long, default_value = "latest")]
    pub snapshot: String,
    /// Level to reach: 1 structure, 2 data, 3 restore, 4 validation (default: the job's).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub level: Option<u8>,
    /// As a replacement machine would: only the repository URL and a key (the recovery file
    /// from --recovery-file, or the passphrase), no cache, no catalog.
    #[arg(long)]
    pub cold: bool,
    /// Drill this copy of the job (a `[[copy]]` name) instead of its repository: proves the
    /// copy restores on its own.
    #[arg(long, value_name = "NAME")]
    pub copy: Option<String>,
    /// A ransomware drill of an S3 copy (--copy, or the job's only one): attack a canary
    /// repository beside it with this host's credentials, restore it as of before, and check
    /// that the copy's locks cover the RPO (docs/copies.md). Never touches the copy's data.
    #[arg(long, conflicts_with_all = ["snapshot", "level", "cold"])]
    pub ransomware: bool,
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Address of the dashboard, /metrics and /healthz (default: the configuration file's
    /// `[daemon]` listen, else 127.0.0.1:8420).
    #[arg(long, env = "REMPART_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Runs at once, all jobs together (default: 2).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent: Option<u16>,
    /// How long running steps may go on after SIGTERM before they are cancelled (default: 60s).
    #[arg(long)]
    pub grace: Option<String>,
    /// File holding a bearer token that every HTTP page but /healthz then requires (first
    /// line; the configuration file's `[daemon] token_file` otherwise).
    #[arg(long, env = "REMPART_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshots to forget (ids or unique prefixes, also of snapshot objects that cannot be
    /// read); instead of --keep-* rules.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Use this job's repository and retention policy (and only its snapshots).
    #[arg(long)]
    pub job: Option<String>,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep everything this recent, counted from the newest snapshot (like 30d).
    #[arg(long)]
    pub keep_within: Option<String>,
    /// Keep snapshots with this tag (repeatable).
    #[arg(long = "keep-tag")]
    pub keep_tags: Vec<String>,
    /// Time zone of the hour/day/week buckets.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Show what would be kept and removed, and which rule kept what; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Apply the rules only to this host's snapshots.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Apply the rules only to snapshots carrying these tags (comma-separated: all of them;
    /// repeated: any of the lists).
    #[arg(long = "tag", value_name = "TAG[,TAG...]")]
    pub tags: Vec<String>,
    /// Apply the rules only to snapshots that backed up this path (repeatable: all of them).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// Group snapshots by a comma-separated subset of host, paths, tags ('' for one group)
    /// and apply the rules to each group.
    #[arg(long, default_value = "host,paths", value_name = "FIELDS")]
    pub group_by: crate::maintenance::retention::GroupBy,
    /// Prune right after.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Use this job's repository.
    #[arg(long)]
    pub job: Option<String>,
    /// Show what would be marked, repacked and deleted; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// How long marked packs wait before a later prune deletes them.
    #[arg(long, default_value = "1h")]
    pub grace: String,
}

#[derive(Subcommand, Debug)]
pub enum EvidenceCommand {
    /// Check every record's hash, signature and chain link, and compare the local ledger with
    /// the repositories' write-once copies; names any edited, deleted, reordered, inserted or
    /// re-signed record, and prints this installation's key fingerprint.
    Verify,
    /// Write this installation's chains for an auditor: a signed header (anchor and head of
    /// each chain), then the records with their hashes and signatures.
    Export {
        /// Only records of the last DURATION (like 90d).
        #[arg(long)]
        since: Option<String>,
        /// JSON Lines (verifiable: signed header and records) or CSV (one row per record).
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
        /// Output file (default: standard output).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Verify an export against a pinned key fingerprint (what an auditor runs; needs no
    /// repository, catalog or key of the installation).
    VerifyExport {
        /// The file written by 'rempart evidence export'.
        file: PathBuf,
        /// The fingerprint 'rempart evidence verify' prints on the installation (16 hex digits).
        #[arg(long)]
        key_fingerprint: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Recreate the catalog from the jobs' repositories (on a new host).
    Rebuild,
    /// List recorded runs.
    Runs {
        /// Only runs of this job.
        #[arg(long)]
        job: Option<String>,
        /// Only runs of the last DURATION (like 7d).
        #[arg(long, default_value = "30d")]
        since: String,
    },
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also read every pack and verify every blob.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read only a subset of the packs: N/M (run 1/M .. M/M to cover everything) or P%.
    #[arg(long, value_name = "N/M|P%")]
    pub read_data_subset: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Rebuild the index from the packs that exist (after a lost or damaged index).
    Index(RepairIndexArgs),
    /// Write new snapshots without the files and folders that can no longer be read.
    Snapshots(RepairSnapshotsArgs),
    /// Store lost or damaged data again from another repository holding the same files (a
    /// copy), each blob verified by its id.
    Heal(RepairHealArgs),
}

#[derive(Args, Debug)]
pub struct RepairHealArgs {
    /// The other repository (a local path or s3://...).
    #[arg(long, value_name = "REPO")]
    pub from: String,
    /// Its passphrase file.
    #[arg(long, value_name = "FILE")]
    pub from_password_file: PathBuf,
    /// Also read every pack first: damaged blobs are healed too, not only missing ones.
    #[arg(long)]
    pub read_data: bool,
    /// Say what would be healed; change nothing (damaged packs are not looked for).
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct RepairIndexArgs {
    /// Say what would change; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Also read every pack: damaged blobs leave the index (so the next backup stores them
    /// again) and the readable blobs of a damaged pack are copied into new packs before the
    /// damaged pack is deleted.
    #[arg(long)]
    pub read_data: bool,
}

#[derive(Args, Debug)]
pub struct RepairSnapshotsArgs {
    /// Say what would change; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Forget the damaged original snapshots once their repaired copies are saved, and
    /// snapshot objects that cannot be read at all.
    #[arg(long)]
    pub forget: bool,
    /// Also read all data to find damaged chunks (otherwise only missing ones are found);
    /// damaged packs are salvaged as 'repair index --read-data' does.
    #[arg(long)]
    pub read_data: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// zstd compression level for new data (1-22).
    #[arg(long, default_value_t = 3)]
    pub compression: i32,
    /// Target pack size in MiB.
    #[arg(long, default_value_t = 16)]
    pub pack_size_mib: u32,
    /// When the password file does not exist, create it (mode 0600) with a random passphrase.
    #[arg(long)]
    pub create_password_file: bool,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Files and folders to back up, or database URLs (`postgres://USER@HOST:PORT/DB[,DB]`,
    /// mysql://USER@HOST:PORT/DB, sqlite:///PATH; a path of '/' means every database).
    #[arg(required_unless_present_any = ["files_from", "stdin"])]
    pub paths: Vec<String>,
    /// Also back up the paths listed in FILE ('-' for stdin): one per line ('#' comments and
    /// blank lines skipped), or NUL-separated with -0.
    #[arg(long, value_name = "FILE")]
    pub files_from: Vec<PathBuf>,
    /// --files-from lists are separated by NUL bytes (find -print0).
    #[arg(short = '0', long = "null", requires = "files_from")]
    pub null: bool,
    /// Leave out what matches the globs in FILE (one per line, '#' comments) (repeatable).
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Leave out the contents of folders tagged with a valid CACHEDIR.TAG (the tag is kept).
    #[arg(long)]
    pub exclude_caches: bool,
    /// Leave out the contents of folders holding a file NAME (and, with :HEADER, starting with
    /// HEADER); the marker itself is kept (repeatable).
    #[arg(long, value_name = "NAME[:HEADER]")]
    pub exclude_if_present: Vec<String>,
    /// Leave out regular files larger than SIZE (like 100M, 2G).
    #[arg(long, value_name = "SIZE", value_parser = crate::backup::filters::parse_size)]
    pub exclude_larger_than: Option<u64>,
    /// Back up what is read from stdin as one file (named by --stdin-filename).
    #[arg(long, conflicts_with_all = ["paths", "files_from"])]
    pub stdin: bool,
    /// The name of the --stdin file in the snapshot.
    #[arg(long, default_value = "stdin", value_name = "NAME", requires = "stdin")]
    pub stdin_filename: String,
    /// File holding the database password (first line); never put it in the URL.
    #[arg(long, env = "REMPART_DB_PASSWORD_FILE")]
    pub db_password_file: Option<PathBuf>,
    /// Leave out entries matching GLOB (a name pattern like '*.tmp', or a path pattern with '/').
    #[arg(long = "exclude", short = 'e', value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name recorded in the snapshot (default: this host).
    #[arg(long)]
    pub host: Option<String>,
    /// Do not cross file-system boundaries.
    #[arg(long, short = 'x')]
    pub one_file_system: bool,
    /// Read every file, ignoring the parent snapshot.
    #[arg(long)]
    pub force: bool,
    /// Compare against this snapshot instead of the latest one of the same host and paths.
    #[arg(long)]
    pub parent: Option<String>,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Packs uploaded at once (default: 1 for a local folder, 4 for S3).
    #[arg(long)]
    pub uploads: Option<usize>,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot id (or prefix), or 'latest'.
    pub snapshot: String,
    /// Only this path (and below) inside the snapshot.
    pub path: Option<String>,
    /// Show mode, owner, size and time.
    #[arg(short, long)]
    pub long: bool,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// A glob: without '/' it matches entry names ('*.conf'), with '/' whole paths
    /// ('/etc/**/*.conf'), as backup's --exclude does.
    pub pattern: String,
    /// Only these snapshots (ids, prefixes or 'latest'; repeatable). Default: all.
    #[arg(long = "snapshot", short = 's', value_name = "ID")]
    pub snapshots: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only below this path inside the snapshots.
    #[arg(long)]
    pub path: Option<String>,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The older snapshot (id, prefix or 'latest').
    pub before: String,
    /// The newer snapshot.
    pub after: String,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Only these snapshots (ids, prefixes or 'latest'). Default: all.
    #[arg(value_name = "ID")]
    pub snapshots: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Snapshots to copy (ids, prefixes or 'latest'). Default: all.
    #[arg(value_name = "ID")]
    pub snapshots: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// The destination repository: a local folder or s3://BUCKET/PREFIX (S3 settings from the
    /// environment, as for the source). It must exist ('rempart init').
    #[arg(long, value_name = "REPO")]
    pub to: String,
    /// File holding the destination's passphrase (first line).
    #[arg(long, env = "REMPART_TO_PASSWORD_FILE", value_name = "FILE")]
    pub to_password_file: PathBuf,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Snapshot id (or prefix), or 'latest'.
    pub snapshot: String,
    /// The file (or, with --archive tar, the folder) inside the snapshot.
    pub path: String,
    /// Write a folder as an archive of this format (only 'tar').
    #[arg(long, value_parser = ["tar"])]
    pub archive: Option<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    /// Snapshots to change (ids, prefixes or 'latest').
    #[arg(value_name = "ID", required = true)]
    pub snapshots: Vec<String>,
    /// Add this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub add: Vec<String>,
    /// Remove this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub remove: Vec<String>,
    /// Replace all tags with these (repeatable; --set '' clears them).
    #[arg(long, value_name = "TAG", conflicts_with_all = ["add", "remove"])]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id (or prefix), or 'latest'.
    pub snapshot: String,
    /// Folder to restore into (created when missing); for a database snapshot, the dump files.
    #[arg(long, short = 't', required_unless_present = "to", conflicts_with = "to")]
    pub target: Option<PathBuf>,
    /// Database to load a database snapshot into (postgres://USER@HOST:PORT/NEWDB,
    /// mysql://..., sqlite:///PATH); created when missing.
    #[arg(long)]
    pub to: Option<String>,
    /// Which database of the snapshot, when it holds several.
    #[arg(long)]
    pub database: Option<String>,
    /// Restore into a database that already holds tables (replacing its objects).
    #[arg(long)]
    pub force: bool,
    /// PostgreSQL: also restore roles and tablespaces (pg_dumpall --globals-only), and owners.
    #[arg(long)]
    pub globals: bool,
    /// File holding the target database's password.
    #[arg(long, env = "REMPART_DB_PASSWORD_FILE")]
    pub db_password_file: Option<PathBuf>,
    /// Restore only this snapshot path, or the paths matching this glob ('/etc/**/*.conf'),
    /// with what is below them (repeatable).
    #[arg(long = "include", short = 'i', value_name = "PATH|GLOB")]
    pub includes: Vec<String>,
    /// Leave out what matches this glob, with backup's --exclude rules (repeatable).
    #[arg(long = "exclude", short = 'e', value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Say what would be restored (files, folders, bytes); write nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// What to do with what is already in the target: always replace it, only if-changed
    /// (content checked against the backup's hash), only if-newer (by modification time), or
    /// never. A file that cannot be restored intact never replaces the one in place.
    #[arg(long, value_enum, default_value = "always")]
    pub overwrite: crate::restore::Overwrite,
    /// Make the target equal to the snapshot: remove what it holds and the snapshot does not
    /// (only within --include, never what --exclude leaves out).
    #[arg(long)]
    pub delete: bool,
    /// Threads that decrypt and write files (default: cores). From S3, ranges are fetched ahead
    /// of them, as many at once as the request scheduler allows (REMPART_S3_MAX_REQUESTS).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// List the key objects.
    List,
    /// Add a key: a new passphrase that opens the repository.
    Add(KeyAddArgs),
    /// Remove a key object (not the one used to open the repository).
    Remove(KeyRemoveArgs),
    /// Write a recovery file (the wrapped master key and the repository id) to keep offline.
    Export(KeyExportArgs),
}

#[derive(Args, Debug)]
pub struct KeyAddArgs {
    /// File holding the new passphrase (otherwise asked on the terminal).
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
    /// A label shown by 'key list'.
    #[arg(long, default_value = "")]
    pub label: String,
}

#[derive(Args, Debug)]
pub struct KeyRemoveArgs {
    /// Key id or unique prefix, from 'key list'.
    pub id: String,
}

#[derive(Args, Debug)]
pub struct KeyExportArgs {
    /// Where to write the recovery file (mode 0600); '-' for standard output.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Replace the file when it exists (a recovery file of another repository may be there).
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum ImmutableCommand {
    /// Versioning, Object Lock and the retention of the repository's `config` object (the
    /// date every live object is locked until at least). Needs no passphrase.
    Status,
    /// Extend the retention of every live object to now + immutable_for + lock_refresh when
    /// due (half of lock_refresh after the last extension), or now with --force. Needs
    /// REMPART_IMMUTABLE_FOR in the environment or the S3 settings file.
    Extend {
        /// Extend even when not due.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// Remove every lock, also live ones (only when no other rempart process uses the repository).
    #[arg(long)]
    pub remove_all: bool,
}

/// `--as-of`: an RFC 3339 time, or `YYYY-MM-DD HH:MM:SS` in UTC.
fn parse_as_of(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .map_err(|_| format!("'{text}' is not a time: expected RFC 3339 (2026-11-30T07:00:00Z) or 'YYYY-MM-DD HH:MM:SS' in UTC"))
}
