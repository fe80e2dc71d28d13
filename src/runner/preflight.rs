//! GPU preflight: before a phase spends hours on a runner, check that the GPUs the job
//! was given are the model and count the campaign asked for, and that nothing else is
//! running on them (a foreign process skews every benchmark number).
//!
//! The parsers are pure functions over `nvidia-smi` output text; the only I/O is the
//! [`GpuQuery`] port, whose real implementation runs `nvidia-smi` (path overridable so
//! tests can point at a script that prints canned output).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;

use crate::exit::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK, EXIT_VERDICT};

/// The per-GPU query the preflight runs (units stripped).
pub const QUERY_GPU_ARGS: [&str; 2] = [
    "--query-gpu=index,name,memory.total,memory.used,driver_version",
    "--format=csv,noheader,nounits",
];
/// The query mapping GPU index to UUID (compute apps are reported by UUID).
pub const QUERY_UUID_ARGS: [&str; 2] = ["--query-gpu=index,uuid", "--format=csv,noheader"];
/// The query listing processes that hold a CUDA context.
pub const QUERY_APPS_ARGS: [&str; 2] = [
    "--query-compute-apps=gpu_uuid,pid,used_memory",
    "--format=csv,noheader",
];

/// One GPU as reported by `nvidia-smi --query-gpu`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_total_mib: u64,
    /// `None` when the driver reports `[N/A]` (MIG, some virtualised hosts).
    pub memory_used_mib: Option<u64>,
    pub driver_version: String,
}

impl GpuInfo {
    /// Free memory in MiB, when the used amount is known.
    pub fn memory_free_mib(&self) -> Option<u64> {
        self.memory_used_mib
            .map(|used| self.memory_total_mib.saturating_sub(used))
    }
}

/// One process holding a CUDA context, from `--query-compute-apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComputeApp {
    pub gpu_uuid: String,
    pub pid: u32,
    /// `None` when reported as `[N/A]` (common inside containers).
    pub used_memory_mib: Option<u64>,
}

/// Driver and CUDA versions from the `nvidia-smi` banner.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SmiHeader {
    pub driver_version: Option<String>,
    pub cuda_version: Option<String>,
}

/// Everything the preflight learned from the host, before any judgement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GpuInventory {
    pub header: SmiHeader,
    pub gpus: Vec<GpuInfo>,
    /// GPU index -> UUID.
    pub uuids: BTreeMap<u32, String>,
    pub apps: Vec<ComputeApp>,
}

/// Where a piece of `nvidia-smi` output failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: line {line}: {message} (in {text:?})")]
pub struct ParseError {
    /// Which query produced the text (for example `--query-gpu`).
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    pub message: String,
    /// The offending line, truncated to 200 characters.
    pub text: String,
}

fn parse_error(
    source_name: &str,
    line: usize,
    text: &str,
    message: impl Into<String>,
) -> ParseError {
    ParseError {
        source_name: source_name.to_string(),
        line,
        message: message.into(),
        text: text.chars().take(200).collect(),
    }
}

fn is_not_available(field: &str) -> bool {
    matches!(
        field,
        "[N/A]" | "N/A" | "[Not Supported]" | "[Insufficient Permissions]"
    )
}

/// Splits a CSV line into exactly `n` trimmed fields; the name column is the only one
/// that could ever hold a comma, so extra commas are folded back into `name_column`.
fn split_fields<'a>(
    line: &'a str,
    n: usize,
    name_column: Option<usize>,
) -> Option<Vec<std::borrow::Cow<'a, str>>> {
    let parts: Vec<&str> = line.split(',').map(str::trim).collect();
    if parts.len() == n {
        return Some(parts.into_iter().map(std::borrow::Cow::Borrowed).collect());
    }
    let name_column = name_column?;
    if parts.len() < n {
        return None;
    }
    let extra = parts.len() - n;
    let mut out: Vec<std::borrow::Cow<'a, str>> = Vec::with_capacity(n);
    for (i, part) in parts.iter().enumerate() {
        if i < name_column || i > name_column + extra {
            out.push(std::borrow::Cow::Borrowed(part));
        } else if i == name_column {
            let joined = parts.get(name_column..=name_column + extra)?.join(", ");
            out.push(std::borrow::Cow::Owned(joined));
        }
    }
    Some(out)
}

/// Parses `nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version
/// --format=csv,noheader,nounits`.
pub fn parse_query_gpu(text: &str) -> Result<Vec<GpuInfo>, ParseError> {
    const SRC: &str = "--query-gpu";
    let mut gpus = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_fields(line, 5, Some(1)).ok_or_else(|| {
            parse_error(SRC, lineno, line, "expected 5 comma-separated fields: index, name, memory.total, memory.used, driver_version")
        })?;
        let [index, name, total, used, driver] = fields.as_slice() else {
            return Err(parse_error(SRC, lineno, line, "expected 5 fields"));
        };
        let index: u32 = index.parse().map_err(|_| {
            parse_error(
                SRC,
                lineno,
                line,
                format!("index {index:?} is not a number"),
            )
        })?;
        if name.is_empty() {
            return Err(parse_error(SRC, lineno, line, "empty GPU name"));
        }
        let memory_total_mib: u64 = total.parse().map_err(|_| {
            parse_error(
                SRC,
                lineno,
                line,
                format!("memory.total {total:?} is not a number of MiB (was `nounits` passed?)"),
            )
        })?;
        let memory_used_mib = if is_not_available(used) {
            None
        } else {
            Some(used.parse().map_err(|_| {
                parse_error(
                    SRC,
                    lineno,
                    line,
                    format!("memory.used {used:?} is not a number of MiB"),
                )
            })?)
        };
        if driver.is_empty() {
            return Err(parse_error(SRC, lineno, line, "empty driver_version"));
        }
        gpus.push(GpuInfo {
            index,
            name: name.to_string(),
            memory_total_mib,
            memory_used_mib,
            driver_version: driver.to_string(),
        });
    }
    Ok(gpus)
}

/// Parses `nvidia-smi --query-gpu=index,uuid --format=csv,noheader`.
pub fn parse_uuid_map(text: &str) -> Result<BTreeMap<u32, String>, ParseError> {
    const SRC: &str = "--query-gpu=index,uuid";
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_fields(line, 2, None)
            .ok_or_else(|| parse_error(SRC, lineno, line, "expected 2 fields: index, uuid"))?;
        let [index, uuid] = fields.as_slice() else {
            return Err(parse_error(SRC, lineno, line, "expected 2 fields"));
        };
        let index: u32 = index.parse().map_err(|_| {
            parse_error(
                SRC,
                lineno,
                line,
                format!("index {index:?} is not a number"),
            )
        })?;
        if !uuid.starts_with("GPU-") && !uuid.starts_with("MIG-") {
            return Err(parse_error(
                SRC,
                lineno,
                line,
                format!("uuid {uuid:?} does not start with GPU- or MIG-"),
            ));
        }
        map.insert(index, uuid.to_string());
    }
    Ok(map)
}

/// Parses a memory cell such as `1634 MiB`, `1634` or `[N/A]`.
fn parse_mib(cell: &str) -> Result<Option<u64>, String> {
    if is_not_available(cell) {
        return Ok(None);
    }
    let number = cell.strip_suffix("MiB").unwrap_or(cell).trim();
    number
        .parse()
        .map(Some)
        .map_err(|_| format!("used_memory {cell:?} is not a MiB amount"))
}

/// Parses `nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader`.
/// Empty output means no process holds a CUDA context.
pub fn parse_compute_apps(text: &str) -> Result<Vec<ComputeApp>, ParseError> {
    const SRC: &str = "--query-compute-apps";
    let mut apps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("No running") {
            continue;
        }
        let fields = split_fields(line, 3, None).ok_or_else(|| {
            parse_error(
                SRC,
                lineno,
                line,
                "expected 3 fields: gpu_uuid, pid, used_memory",
            )
        })?;
        let [uuid, pid, used] = fields.as_slice() else {
            return Err(parse_error(SRC, lineno, line, "expected 3 fields"));
        };
        let pid: u32 = pid
            .parse()
            .map_err(|_| parse_error(SRC, lineno, line, format!("pid {pid:?} is not a number")))?;
        let used_memory_mib = parse_mib(used).map_err(|m| parse_error(SRC, lineno, line, m))?;
        apps.push(ComputeApp {
            gpu_uuid: uuid.to_string(),
            pid,
            used_memory_mib,
        });
    }
    Ok(apps)
}

/// Reads the driver and CUDA versions from the banner of plain `nvidia-smi`
/// (`| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0 |`).
pub fn parse_smi_header(text: &str) -> SmiHeader {
    fn value_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let start = line.find(key)? + key.len();
        let rest = line.get(start..)?.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(rest.len());
        let value = rest.get(..end)?;
        (!value.is_empty()).then_some(value)
    }
    let mut header = SmiHeader::default();
    for line in text.lines().take(40) {
        if header.driver_version.is_none() {
            header.driver_version = value_after(line, "Driver Version:").map(str::to_string);
        }
        if header.cuda_version.is_none() {
            header.cuda_version = value_after(line, "CUDA Version:").map(str::to_string);
        }
    }
    header
}

/// The runner-label hardware slug of a GPU name, following SGLang CI's
/// `{count}-gpu-{hardware}` convention: `NVIDIA H100 80GB HBM3` -> `h100`,
/// `NVIDIA H200` -> `h200`, `NVIDIA GeForce RTX 5090` -> `5090`,
/// `NVIDIA A100-SXM4-80GB` -> `a100`. `runner-setup/lib.sh` implements the same rule
/// in shell; a test keeps the two in step.
pub fn hardware_slug(gpu_name: &str) -> Option<String> {
    let mut words: Vec<&str> = gpu_name.split_whitespace().collect();
    for prefix in ["NVIDIA", "Tesla", "GeForce", "Quadro"] {
        if words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case(prefix))
        {
            words.remove(0);
        }
    }
    if words.first().is_some_and(|w| w.eq_ignore_ascii_case("RTX")) && words.len() > 1 {
        words.remove(0);
    }
    let mut slug = words.first()?.to_ascii_lowercase();
    if slug == "pro" {
        // "RTX PRO 6000 Blackwell ..." -> "pro6000"
        if let Some(next) = words.get(1) {
            slug.push_str(&next.to_ascii_lowercase());
        }
    }
    let slug: String = slug
        .split('-')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    (!slug.is_empty()).then_some(slug)
}

/// The default self-hosted runner labels for a GPU set: `[self-hosted, <n>-gpu-<hw>]`.
pub fn runner_labels(hardware: &str, count: usize) -> Vec<String> {
    vec!["self-hosted".to_string(), format!("{count}-gpu-{hardware}")]
}

/// A GPU the job may use, as given by `--visible-devices` / `CUDA_VISIBLE_DEVICES`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeviceSelector {
    Index(u32),
    Uuid(String),
}

/// Why a `--visible-devices` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("visible devices {value:?}: entry {position} ({entry:?}) {why}")]
pub struct VisibleDevicesError {
    /// The value (its start, when long).
    pub value: String,
    /// 1-based position of the bad entry.
    pub position: usize,
    pub entry: String,
    pub why: &'static str,
}

const NOT_A_DEVICE: &str = "is neither a GPU index nor a GPU-/MIG- UUID";

/// Most entries a visible-devices list may hold (no host has more GPUs).
pub const MAX_VISIBLE_DEVICES: usize = 1024;

/// Parses a `CUDA_VISIBLE_DEVICES`-style list (`0,1`, `GPU-8c6b...`); empty means all. At
/// most [`MAX_VISIBLE_DEVICES`] entries are read: the next one is refused.
pub fn parse_visible_devices(value: &str) -> Result<Vec<DeviceSelector>, VisibleDevicesError> {
    let mut out = Vec::new();
    for (i, entry) in value.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        if out.len() >= MAX_VISIBLE_DEVICES {
            return Err(VisibleDevicesError {
                value: value.chars().take(80).collect(),
                position: i + 1,
                entry: entry.chars().take(80).collect(),
                why: "is one more than the 1024 devices a list may name",
            });
        }
        if let Ok(index) = entry.parse::<u32>() {
            out.push(DeviceSelector::Index(index));
        } else if entry.starts_with("GPU-") || entry.starts_with("MIG-") {
            out.push(DeviceSelector::Uuid(entry.to_string()));
        } else {
            return Err(VisibleDevicesError {
                value: value.chars().take(200).collect(),
                position: i + 1,
                entry: entry.chars().take(80).collect(),
                why: NOT_A_DEVICE,
            });
        }
    }
    Ok(out)
}

/// What the campaign expects of the GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// Hardware slug such as `h100` (compared with [`hardware_slug`]).
    pub gpu_model: Option<String>,
    pub gpu_count: Option<usize>,
    /// Empty: every GPU on the host.
    pub visible: Vec<DeviceSelector>,
    pub min_free_mib: Option<u64>,
}

/// A process on one of the job's GPUs that the job did not start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignProcess {
    pub gpu_index: Option<u32>,
    pub gpu_uuid: String,
    pub pid: u32,
    pub used_memory_mib: Option<u64>,
}

impl fmt::Display for ForeignProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gpu = self
            .gpu_index
            .map_or_else(|| self.gpu_uuid.clone(), |i| format!("GPU {i}"));
        match self.used_memory_mib {
            Some(m) => write!(f, "pid {} on {gpu} using {m} MiB", self.pid),
            None => write!(f, "pid {} on {gpu}", self.pid),
        }
    }
}

/// One reason the GPUs are not fit for the phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreflightFailure {
    #[error("nvidia-smi reported no GPUs")]
    NoGpus,
    #[error("visible device {selector} is not on this host (GPUs present: {available})")]
    VisibleDeviceMissing { selector: String, available: String },
    #[error("expected {expected} GPUs but the job sees {found}")]
    CountMismatch { expected: usize, found: usize },
    #[error("expected GPU model {expected} but GPU {index} is {name:?}")]
    ModelMismatch {
        expected: String,
        index: u32,
        name: String,
    },
    #[error("the job's GPUs mix models: {models}")]
    MixedModels { models: String },
    #[error("GPU {index} has {free_mib} MiB free, below the required {required_mib} MiB")]
    InsufficientFreeMemory {
        index: u32,
        free_mib: u64,
        required_mib: u64,
    },
    #[error("foreign process on the job's GPUs: {process}")]
    ForeignProcess { process: ForeignProcess },
}

impl fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSelector::Index(i) => write!(f, "{i}"),
            DeviceSelector::Uuid(u) => f.write_str(u),
        }
    }
}

/// The judged result of a preflight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightReport {
    pub driver_version: Option<String>,
    pub cuda_version: Option<String>,
    /// Hardware slug of the job's GPUs (`h100`), when they agree on one.
    pub hardware: Option<String>,
    pub gpus: Vec<GpuInfo>,
    /// Default runner labels for this GPU set.
    pub runner_labels: Vec<String>,
    pub foreign_processes: Vec<ForeignProcess>,
    pub failures: Vec<PreflightFailure>,
}

impl PreflightReport {
    /// True when nothing blocks the phase.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Judges an inventory against the campaign's expectations. Collects every failure
/// rather than stopping at the first, so an operator fixes the host in one pass.
pub fn evaluate(inventory: &GpuInventory, expect: &Expectations) -> PreflightReport {
    let mut failures = Vec::new();
    if inventory.gpus.is_empty() {
        failures.push(PreflightFailure::NoGpus);
    }
    let available = inventory
        .gpus
        .iter()
        .map(|g| g.index.to_string())
        .collect::<Vec<_>>()
        .join(",");

    let mut selected: Vec<&GpuInfo> = Vec::new();
    if expect.visible.is_empty() {
        selected.extend(inventory.gpus.iter());
    } else {
        for selector in &expect.visible {
            let found = inventory.gpus.iter().find(|g| match selector {
                DeviceSelector::Index(i) => g.index == *i,
                DeviceSelector::Uuid(u) => inventory.uuids.get(&g.index) == Some(u),
            });
            match found {
                Some(g) if !selected.iter().any(|s| s.index == g.index) => selected.push(g),
                Some(_) => {}
                None => failures.push(PreflightFailure::VisibleDeviceMissing {
                    selector: selector.to_string(),
                    available: available.clone(),
                }),
            }
        }
    }

    if let Some(expected) = expect.gpu_count {
        if selected.len() != expected {
            failures.push(PreflightFailure::CountMismatch {
                expected,
                found: selected.len(),
            });
        }
    }

    let mut slugs: Vec<String> = selected
        .iter()
        .map(|g| hardware_slug(&g.name).unwrap_or_else(|| g.name.clone()))
        .collect();
    if let Some(expected) = &expect.gpu_model {
        let expected = expected.to_ascii_lowercase();
        for (gpu, slug) in selected.iter().zip(&slugs) {
            if *slug != expected {
                failures.push(PreflightFailure::ModelMismatch {
                    expected: expected.clone(),
                    index: gpu.index,
                    name: gpu.name.clone(),
                });
            }
        }
    }
    slugs.sort();
    slugs.dedup();
    let hardware = match slugs.as_slice() {
        [one] => Some(one.clone()),
        [] => None,
        many => {
            failures.push(PreflightFailure::MixedModels {
                models: many.join(", "),
            });
            None
        }
    };

    if let Some(required_mib) = expect.min_free_mib {
        for gpu in &selected {
            if let Some(free_mib) = gpu.memory_free_mib() {
                if free_mib < required_mib {
                    failures.push(PreflightFailure::InsufficientFreeMemory {
                        index: gpu.index,
                        free_mib,
                        required_mib,
                    });
                }
            }
        }
    }

    let uuid_to_index: BTreeMap<&str, u32> = inventory
        .uuids
        .iter()
        .map(|(i, u)| (u.as_str(), *i))
        .collect();
    let mut foreign_processes = Vec::new();
    for app in &inventory.apps {
        let gpu_index = uuid_to_index.get(app.gpu_uuid.as_str()).copied();
        // An app whose UUID we cannot map might sit on one of our GPUs: count it.
        let on_selected = gpu_index.is_none_or(|i| selected.iter().any(|g| g.index == i));
        if on_selected {
            let process = ForeignProcess {
                gpu_index,
                gpu_uuid: app.gpu_uuid.clone(),
                pid: app.pid,
                used_memory_mib: app.used_memory_mib,
            };
            failures.push(PreflightFailure::ForeignProcess {
                process: process.clone(),
            });
            foreign_processes.push(process);
        }
    }

    let driver_version = inventory
        .header
        .driver_version
        .clone()
        .or_else(|| selected.first().map(|g| g.driver_version.clone()));
    let runner_labels = hardware
        .as_deref()
        .map(|h| runner_labels(h, selected.len()))
        .unwrap_or_default();
    PreflightReport {
        driver_version,
        cuda_version: inventory.header.cuda_version.clone(),
        hardware,
        gpus: selected.into_iter().cloned().collect(),
        runner_labels,
        foreign_processes,
        failures,
    }
}

/// Port to the GPU management tool, so tests can substitute canned output.
pub trait GpuQuery {
    /// Runs the tool with `args` and returns its standard output.
    fn query(&self, args: &[&str]) -> Result<String, QueryError>;
}

/// Running the GPU management tool failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("could not run {program} {args}: {source}")]
    Spawn {
        program: String,
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} {args} exited with {status}: {stderr}")]
    Failed {
        program: String,
        args: String,
        status: String,
        stderr: String,
    },
}

/// The real `nvidia-smi` (or whatever `path` names).
#[derive(Debug, Clone)]
pub struct NvidiaSmi {
    pub path: PathBuf,
}

impl GpuQuery for NvidiaSmi {
    fn query(&self, args: &[&str]) -> Result<String, QueryError> {
        let program = self.path.display().to_string();
        let output = Command::new(&self.path)
            .args(args)
            .output()
            .map_err(|source| QueryError::Spawn {
                program: program.clone(),
                args: args.join(" "),
                source,
            })?;
        if !output.status.success() {
            return Err(QueryError::Failed {
                program,
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr)
                    .trim()
                    .chars()
                    .take(500)
                    .collect(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Collecting the inventory failed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Runs the four queries and parses them.
pub fn collect_inventory(tool: &dyn GpuQuery) -> Result<GpuInventory, InventoryError> {
    let header = parse_smi_header(&tool.query(&[])?);
    let gpus = parse_query_gpu(&tool.query(&QUERY_GPU_ARGS)?)?;
    let uuids = parse_uuid_map(&tool.query(&QUERY_UUID_ARGS)?)?;
    let apps = parse_compute_apps(&tool.query(&QUERY_APPS_ARGS)?)?;
    Ok(GpuInventory {
        header,
        gpus,
        uuids,
        apps,
    })
}

/// Arguments of `sota-bot runner preflight`.
#[derive(Debug, Clone, clap::Args)]
pub struct PreflightArgs {
    /// GPUs the job may use (indices or UUIDs, comma-separated); default: all GPUs.
    #[arg(long, env = "CUDA_VISIBLE_DEVICES")]
    pub visible_devices: Option<String>,
    /// Required GPU model as a runner-label slug (h100, h200, b200, ...).
    #[arg(long)]
    pub expect_gpu_model: Option<String>,
    /// Required number of visible GPUs.
    #[arg(long)]
    pub expect_gpu_count: Option<usize>,
    /// Fail when a visible GPU has less free memory than this (MiB).
    #[arg(long)]
    pub min_free_mib: Option<u64>,
    /// The nvidia-smi executable (tests point this at a script with canned output).
    #[arg(long, default_value = "nvidia-smi")]
    pub nvidia_smi: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Human-readable rendering of a report.
pub fn render_text(report: &PreflightReport) -> String {
    let mut out = String::new();
    let na = || "unknown".to_string();
    out.push_str(&format!(
        "driver {} | CUDA {} | hardware {} | GPUs {}\n",
        report.driver_version.clone().unwrap_or_else(na),
        report.cuda_version.clone().unwrap_or_else(na),
        report.hardware.clone().unwrap_or_else(na),
        report.gpus.len()
    ));
    for gpu in &report.gpus {
        let free = gpu
            .memory_free_mib()
            .map_or_else(|| "unknown".to_string(), |f| format!("{f} MiB"));
        out.push_str(&format!(
            "  GPU {}: {} ({} MiB total, {free} free)\n",
            gpu.index, gpu.name, gpu.memory_total_mib
        ));
    }
    if !report.runner_labels.is_empty() {
        out.push_str(&format!(
            "runner labels: {}\n",
            report.runner_labels.join(", ")
        ));
    }
    if report.ok() {
        out.push_str("preflight: ok\n");
    } else {
        out.push_str(&format!(
            "preflight: FAILED ({} problems)\n",
            report.failures.len()
        ));
        for failure in &report.failures {
            out.push_str(&format!("  - {failure}\n"));
        }
    }
    out
}

/// Entry point of `sota-bot runner preflight`: 0 when fit, 3 when the GPUs are not fit
/// for the phase, 2 for a malformed argument, 1 when nvidia-smi cannot be run or read.
pub fn preflight_main(args: PreflightArgs) -> anyhow::Result<i32> {
    let visible = match parse_visible_devices(args.visible_devices.as_deref().unwrap_or("")) {
        Ok(v) => v,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let tool = NvidiaSmi {
        path: args.nvidia_smi.clone(),
    };
    let inventory = match collect_inventory(&tool) {
        Ok(inv) => inv,
        Err(err) => {
            eprintln!("error: preflight could not read the GPUs: {err}");
            return Ok(EXIT_FAILURE);
        }
    };
    let expect = Expectations {
        gpu_model: args.expect_gpu_model.clone(),
        gpu_count: args.expect_gpu_count,
        visible,
        min_free_mib: args.min_free_mib,
    };
    let report = evaluate(&inventory, &expect);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_text(&report));
    }
    Ok(if report.ok() { EXIT_OK } else { EXIT_VERDICT })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs_follow_sglang_ci_labels() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", "h100"),
            ("NVIDIA H100 PCIe", "h100"),
            ("NVIDIA H100 NVL", "h100"),
            ("NVIDIA H200", "h200"),
            ("NVIDIA H20", "h20"),
            ("NVIDIA B200", "b200"),
            ("NVIDIA GB200", "gb200"),
            ("NVIDIA A100-SXM4-80GB", "a100"),
            ("NVIDIA GeForce RTX 5090", "5090"),
            ("NVIDIA L40S", "l40s"),
            ("Tesla V100-SXM2-16GB", "v100"),
            ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "pro6000"),
        ];
        for (name, slug) in cases {
            assert_eq!(hardware_slug(name).as_deref(), Some(slug), "{name}");
        }
        assert_eq!(hardware_slug("NVIDIA"), None);
        assert_eq!(hardware_slug(""), None);
    }

    #[test]
    fn query_gpu_rejects_units_and_short_lines() {
        let err = parse_query_gpu("0, NVIDIA H200, 143771 MiB, 0 MiB, 580.159.04\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("memory.total"), "{err}");
        let err = parse_query_gpu("0, NVIDIA H200, 143771\n").unwrap_err();
        assert!(err.message.contains("5 comma-separated"), "{err}");
        let err = parse_query_gpu("\nx, NVIDIA H200, 1, 0, 1.0\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn used_memory_may_be_not_available() {
        let gpus = parse_query_gpu("3, NVIDIA H100 80GB HBM3, 81559, [N/A], 535.129.03").unwrap();
        assert_eq!(gpus[0].memory_used_mib, None);
        assert_eq!(gpus[0].memory_free_mib(), None);
        let apps = parse_compute_apps("GPU-aa, 77, [N/A]\n").unwrap();
        assert_eq!(apps[0].used_memory_mib, None);
    }

    #[test]
    fn visible_devices_accept_indices_and_uuids() {
        assert_eq!(
            parse_visible_devices("0, 1,GPU-8c6b").unwrap(),
            vec![
                DeviceSelector::Index(0),
                DeviceSelector::Index(1),
                DeviceSelector::Uuid("GPU-8c6b".into())
            ]
        );
        assert!(parse_visible_devices("").unwrap().is_empty());
        let err = parse_visible_devices("0,cuda:1").unwrap_err();
        assert_eq!(err.position, 2);
        let many = (0..100_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let err = parse_visible_devices(&many).unwrap_err();
        assert_eq!(err.position, 1025);
        assert!(err.to_string().contains("1024 devices"), "{err}");
        assert!(err.value.len() <= 80);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*") {
            let _ = parse_query_gpu(&text);
            let _ = parse_uuid_map(&text);
            let _ = parse_compute_apps(&text);
            let _ = parse_smi_header(&text);
            let _ = parse_visible_devices(&text);
            let _ = hardware_slug(&text);
        }

        #[test]
        fn csv_shaped_input_never_panics(lines in proptest::collection::vec("[0-9a-zA-Z \\[\\]/.,-]{0,40}", 0..6)) {
            let text = lines.join("\n");
            let _ = parse_query_gpu(&text);
            let _ = parse_uuid_map(&text);
            let _ = parse_compute_apps(&text);
        }
    }
}
