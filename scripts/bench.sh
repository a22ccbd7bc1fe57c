#!/usr/bin/env bash
# The standard benchmark suite: checkpoint save/restore against
# the raw disk, measured in the same run (bench/ckpt_bench.cc).
#
#   scripts/bench.sh                  # full suite -> docs/bench/results.{csv,md}, plot.png
#   scripts/bench.sh --quick          # tiny model, 1 rep, into a temp dir (smoke run)
#   scripts/bench.sh --reps=5 --data-dir=/mnt/nvme/bench --out=/tmp/results
#   scripts/bench.sh --report-only    # redo results.md and plot.png from results.csv
#
# Runs, each under mpiexec with the flags the MPI tests use:
#   io (save + restore, same layout) on 1, 2, 4 ranks and 8 devices on 2 ranks;
#   a 4-rank save resharded onto 2 and 3 ranks and onto data=2 x model=2;
#   the same save restored onto data=2 x model=2 and data=4 with each shared
#   shard read once vs read by every rank holding it (printed, not in the CSV);
#   the offline reshard (`meshckpt reshard`) against reading and writing the
#   same bytes: 1 -> 4 ranks, 4 -> 3 ranks, and 4 ranks 1-D -> 2-D;
#   per-tensor overhead (10,000 x 1 KiB) on 1, 2, 4 ranks, and split at 4;
#   async save on 1, 2, 4 ranks: the stall against a memcpy of the same
#   bytes, and the time until durable against a synchronous save.
# Every row also carries the peak memory above the model's buffers.
# Checkpoints and raw files (up to ~4 GB at once) go to --data-dir
# (default $MESHCKPT_BENCH_DIR or /tmp/meshckpt_bench) and are deleted.
# As root the page cache is dropped before every timed operation, and
# gnuplot-nox is installed when missing (otherwise the plot is skipped).
# BUILD_DIR (default build) is the build tree; ckpt_bench is built first.
# Exit status 1 when a run failed (a wrong restored value or a failed call),
# never because of a timing.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0 REPORT_ONLY=0 REPS=3 OUT="" DATA_DIR=${MESHCKPT_BENCH_DIR:-/tmp/meshckpt_bench}
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --report-only) REPORT_ONLY=1 ;;
    --reps=*) REPS=${arg#*=} ;;
    --out=*) OUT=${arg#*=} ;;
    --data-dir=*) DATA_DIR=${arg#*=} ;;
    *) echo "usage: scripts/bench.sh [--quick] [--reps=N] [--out=DIR] [--data-dir=DIR] [--report-only]" >&2
       exit 2 ;;
  esac
done
BUILD=${BUILD_DIR:-build}
if [ $QUICK -eq 1 ]; then
  REPS=1
  [ -n "$OUT" ] || OUT=$(mktemp -d /tmp/meshckpt_bench_quick.XXXXXX)
  DATA_DIR=$OUT/data
  SUITE=quick TIMEOUT=120
else
  [ -n "$OUT" ] || OUT=docs/bench
  SUITE=standard TIMEOUT=900
fi
mkdir -p "$OUT"
CSV=$OUT/results.csv MD=$OUT/results.md PNG=$OUT/plot.png

# --- the runs ---------------------------------------------------------------
FAILED=()
run_suite() {
  [ -f "$BUILD/CMakeCache.txt" ] ||
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target ckpt_bench >/dev/null
  local bench=$BUILD/bench/ckpt_bench
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  local mpirun=(mpiexec --oversubscribe --mca mpi_yield_when_idle 1 --timeout "$TIMEOUT")
  local common=(--dir="$DATA_DIR" --csv="$CSV" --suite="$SUITE" --reps="$REPS")
  if [ $QUICK -eq 1 ]; then common+=(--quick); fi

  mkdir -p "$DATA_DIR"
  local free_kb
  free_kb=$(df -Pk "$DATA_DIR" | awk 'NR == 2 { print $4 }')
  if [ $QUICK -eq 0 ] && [ "$free_kb" -lt $((5 * 1024 * 1024)) ]; then
    echo "bench: warning: only $((free_kb / 1024)) MiB free in $DATA_DIR; the suite needs ~4 GB" >&2
  fi
  rm -f "$CSV"
  START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  MACHINE=$(machine_line)  # While the data dir exists (--quick removes it).
  COMMIT=$(commit_line)    # What was built, not what the tree holds later.

  run() {  # run NP ARGS...
    local np=$1; shift
    echo "+ mpiexec -n $np ckpt_bench $*"
    if ! "${mpirun[@]}" -n "$np" "$bench" "${common[@]}" "$@"; then
      FAILED+=("-n $np $*")
    fi
  }
  for np in 1 2 4; do run $np --mode=io; done
  run 2 --mode=io --devices=8
  local ckpt=$DATA_DIR/saved-np4
  run 4 --mode=save-only --keep="$ckpt"
  run 2 --mode=reshard --from="$ckpt"
  run 3 --mode=reshard --from="$ckpt"
  run 4 --mode=reshard --from="$ckpt" --mesh=2d
  run 4 --mode=read-once --from="$ckpt" --mesh=2d
  run 4 --mode=read-once --from="$ckpt" --mesh=2d --data=4
  run 3 --mode=rewrite --from="$ckpt"
  run 4 --mode=rewrite --from="$ckpt" --mesh=2d
  rm -f "$ckpt.h5" "$ckpt.index"
  local ckpt1=$DATA_DIR/saved-np1
  run 1 --mode=save-only --keep="$ckpt1"
  run 4 --mode=rewrite --from="$ckpt1"
  rm -f "$ckpt1.h5" "$ckpt1.index"
  for np in 1 2 4; do run $np --mode=tensors; done
  run 4 --mode=tensors --tensor-layout=split
  for np in 1 2 4; do run $np --mode=async; done
}

# --- results.md -------------------------------------------------------------
machine_line() {
  local cpu mem fs
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
  fs=$(df -PT "$DATA_DIR" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')
  echo "${cpu:-unknown CPU}, $(nproc) cores, $mem RAM, Linux $(uname -r), data on ${fs:-?}"
}

commit_line() {
  local c
  c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  # The suite's own output (docs/bench) does not count as a change.
  git diff-index --quiet HEAD -- . ':(exclude)docs/bench' 2>/dev/null ||
    c="$c + uncommitted changes"
  echo "$c (branch $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo ?))"
}

write_markdown() {
  {
    echo "# Checkpoint benchmark results"
    echo
    if [ $REPORT_ONLY -eq 1 ]; then
      echo "Tables and plot regenerated by \`scripts/bench.sh --report-only\` from results.csv on" \
           "$(date -u '+%Y-%m-%d %H:%M UTC') (commit $(commit_line)); the runs themselves are older."
      echo "Machine: $(machine_line)."
    else
      echo "Produced by \`scripts/bench.sh$([ $QUICK -eq 1 ] && echo " --quick")\` on" \
           "$(date -u '+%Y-%m-%d %H:%M UTC'); commit $COMMIT."
      echo "Machine: $MACHINE; load average at start $START_LOAD" \
           "(other jobs may have shared the machine: numbers are noisy)."
    fi
    if [ $QUICK -eq 1 ]; then
      echo
      echo "**Quick mode**: a ~1 MB model and one repetition, to check that the harness works;"
      echo "the timings are dominated by fixed costs and say nothing about the targets."
    fi
    echo
    awk -F, -f - "$CSV" <<'AWK'
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
function v(name) { return $col[name] }
function label(  l) {
  if (v("mode") == "reshard" || v("mode") == "rewrite") {
    l = (v("mode") == "rewrite" ? "offline reshard " : "reshard ") v("saved_ranks") "→" v("ranks") " ranks"
    if (v("mesh") ~ /;/ && v("saved_mesh") !~ /;/) l = l " (1-D→2-D)"
    return l
  }
  l = v("op") " " v("ranks") " rank" (v("ranks") + 0 > 1 ? "s" : "")
  if (v("devices") != v("ranks")) l = l ", " v("devices") " devices"
  return l
}
function mark(ok) { return ok ? "met" : "**missed**" }
{
  n++; cache[v("cache")]++; reps = v("reps")
  if (v("mode") != "tensors") model = v("workload")
  lab[n] = label(); mode[n] = v("mode"); op[n] = v("op"); wl[n] = v("workload")
  mesh[n] = v("mesh"); saved[n] = v("saved_ranks") " [" v("saved_mesh") "]"
  gb[n] = sprintf("%.3f", v("bytes") / 1e9)
  ours[n] = sprintf("%.3f [%.3f–%.3f]", v("ours_median_s"), v("ours_min_s"), v("ours_max_s"))
  raw[n] = sprintf("%.3f [%.3f–%.3f]", v("raw_median_s"), v("raw_min_s"), v("raw_max_s"))
  gbps[n] = sprintf("%.2f / %.2f", v("ours_gbps"), v("raw_gbps"))
  ratio[n] = v("ratio") + 0; us[n] = v("us_per_tensor") + 0; tensors[n] = v("tensors")
  peak[n] = v("peak_extra_mib") + 0; start[n] = v("start_extra_mib"); shard[n] = v("largest_shard_mib") + 0
  method[n] = v("mem_method")
}
END {
  if (n == 0) { print "No results (every run failed)."; exit }
  c = ""; for (k in cache) c = c (c == "" ? "" : ", ") k " (" cache[k] " rows)"
  printf "Page cache: %s. Cold means `sync; echo 3 > /proc/sys/vm/drop_caches` before every timed operation, ours and raw alike.\n", c
  printf "Each time is the median of %d repetition%s [min–max]; ours and raw alternate, swapping who goes first every repetition.\n\n", reps, reps == 1 ? "" : "s"
  print "**Ratio** = raw median time / our median time: our throughput as a fraction of the raw disk's (1.00 = as fast as raw)."
  print "Raw baselines: each rank `pwrite`s exactly the bytes it saves to its own file (≤ 64 MiB calls) and `fsync`s;"
  print "for restores each rank `pread`s exactly the bytes of its distinct local shards. Ours = `SaveTensors` (durable: data"
  print "fsynced and the index committed) or `RestoreTensors` (checksums verified), barrier to completion; every restore is"
  print "checked bit-exactly. Offline reshard (`meshckpt reshard`, RewriteCheckpoint with its default 256 MiB budget,"
  print "restored and checked after each repetition): raw = each rank reads 1/ranks of the source data file and writes it"
  print "to its own file through a 64 MiB buffer, then `fsync`s."
  print "Targets: save and restore ≥ 0.9, resharding restore and offline reshard ≥ 0.8.\n"
  print "![ours/raw throughput ratio per scenario](plot.png)\n"
  printf "## Save and restore vs the raw disk (%s: parameters + one Adam slot, float32)\n\n", model
  print "| scenario | mesh | saved on | GB | ours s | raw s | GB/s ours / raw | **ratio** | target |"
  print "|---|---|---|---:|---:|---:|---:|---:|---|"
  for (i = 1; i <= n; i++) if (mode[i] != "tensors" && mode[i] != "async") {
    t = mode[i] == "reshard" || mode[i] == "rewrite" ? 0.8 : 0.9
    printf "| %s | %s | %s | %s | %s | %s | %s | **%.2f** | ≥ %.1f %s |\n", lab[i], mesh[i], saved[i], gb[i], ours[i], raw[i], gbps[i], ratio[i], t, mark(ratio[i] >= t)
  }
  print "\n## Per-tensor overhead (1 KiB float32 tensors)\n"
  print "| workload | scenario | tensors | ours s | raw s | **µs per tensor** | target ≤ 1000 µs |"
  print "|---|---|---:|---:|---:|---:|---|"
  for (i = 1; i <= n; i++) if (mode[i] == "tensors")
    printf "| %s | %s | %d | %s | %s | **%.0f** | %s |\n", wl[i], lab[i], tensors[i], ours[i], raw[i], us[i], mark(us[i] <= 1000)
  print "\nThe raw column here is the same bytes as one `pwrite`/`pread` per tensor: the floor of the disk, not a target."
  print "\n## Async save (AsyncSaver): how long training waits\n"
  print "Stall: `AsyncSaver::Start` as the caller sees it (plan, create, copy into staging reused across saves), against a"
  print "`memcpy` of the same bytes per rank into a buffer kept across repetitions; target: stall ≤ 1.5 × memcpy (ratio ≥ 0.67)."
  print "Durable: from the call until the checkpoint is committed, written by the background thread, against a synchronous save.\n"
  print "| scenario | GB | async s | baseline s | **ratio** | target |"
  print "|---|---:|---:|---:|---:|---|"
  for (i = 1; i <= n; i++) if (mode[i] == "async") {
    base = op[i] == "stall" ? "memcpy" : "sync save"
    tgt = op[i] == "stall" ? sprintf("≥ 0.67 %s", mark(ratio[i] >= 1 / 1.5)) : "—"
    printf "| %s (vs %s) | %s | %s | %s | **%.2f** | %s |\n", lab[i], base, gb[i], ours[i], raw[i], ratio[i], tgt
  }
  print "\n## Peak resident memory above the model's own buffers\n"
  print "Highest RSS during the operation minus the rank's RSS once its buffers were filled, max over ranks and repetitions;"
  print "\"at start\" is the same at the operation's start (memory earlier operations kept). Target: ≤ 64 MiB + largest local shard.\n"
  print "| workload | scenario | peak extra MiB | at start MiB | largest local shard MiB | limit MiB | target | measured by |"
  print "|---|---|---:|---:|---:|---:|---|---|"
  for (i = 1; i <= n; i++) if (method[i] != "")
    printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s |\n", wl[i], lab[i], peak[i], start[i], shard[i], 64 + shard[i], mark(peak[i] <= 64 + shard[i]), method[i]
}
AWK
    if [ ${#FAILED[@]} -gt 0 ]; then
      echo
      echo "**Failed runs** (wrong values or failed calls; see the log):"
      for f in "${FAILED[@]}"; do echo "- \`mpiexec $f\`"; done
    fi
    echo
    echo "Reproduce: \`scripts/bench.sh$([ $QUICK -eq 1 ] && echo " --quick")\`" \
         "(options: \`--reps=N --data-dir=DIR --out=DIR\`); single runs: \`mpiexec -n N build/bench/ckpt_bench --help\`"
    echo "lists the modes (file comment of bench/ckpt_bench.cc). CSV schema: bench/report.h."
  } > "$MD"
  echo "bench: wrote $MD"
}

# --- plot.png ---------------------------------------------------------------
have_gnuplot() { command -v gnuplot >/dev/null 2>&1; }
write_plot() {
  if ! have_gnuplot && [ "$(id -u)" -eq 0 ]; then
    echo "bench: installing gnuplot-nox"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends gnuplot-nox >/dev/null 2>&1; } || true
  fi
  if ! have_gnuplot; then
    echo "bench: gnuplot is not available (apt-get install gnuplot-nox); no plot" >&2
    rm -f "$PNG"
    return
  fi
  local data
  data=$(mktemp)
  # index, label, ratio, kind (save | restore | reshard)
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    $c["mode"] != "tensors" && $c["mode"] != "async" {
      kind = $c["mode"] == "reshard" || $c["mode"] == "rewrite" ? "reshard" : $c["op"]
      if (kind == "reshard") {
        l = ($c["mode"] == "rewrite" ? "offline " : "") $c["saved_ranks"] "->" $c["ranks"] "r"
        if ($c["mesh"] ~ /;/ && $c["saved_mesh"] !~ /;/) l = l " 1D->2D"
      } else {
        l = $c["op"] " " $c["ranks"] "r"
        if ($c["devices"] != $c["ranks"]) l = l "/" $c["devices"] "d"
      }
      printf "%d\t%s\t%s\t%s\n", n++, l, $c["ratio"], kind
    }' "$CSV" > "$data"
  if [ ! -s "$data" ]; then
    echo "bench: nothing to plot" >&2
    rm -f "$data"
    return
  fi
  local cache
  cache=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "cache") k = i; next }
                   { s[$k] = 1 } END { for (x in s) o = o (o ? "+" : "") x; print o }' "$CSV")
  gnuplot <<GNUPLOT
set terminal pngcairo size 1200,620 font "sans,11"
set output "$PNG"
set datafile separator "\t"
set title "meshckpt vs raw disk: our throughput / raw throughput ($SUITE suite, $cache cache, $(date -u +%Y-%m-%d))"
set ylabel "ratio ours / raw  (1.0 = raw disk speed)"
set xlabel "scenario (r = ranks, d = devices; reshard: saved ranks -> restoring ranks)"
stats "$data" using 3 nooutput
set yrange [0:(STATS_max > 1.1 ? STATS_max * 1.15 : 1.25)]
set xrange [-0.6:STATS_records - 0.4]
set grid ytics
set rmargin 6
set key top left
set boxwidth 0.7
set style fill solid 0.85 border -1
set xtics rotate by -30 left nomirror
plot "$data" using 1:(strcol(4) eq "save" ? \$3 : NaN):xtic(2) with boxes lc rgb "#4477aa" title "save (durable: fsync + commit)", \
     "" using 1:(strcol(4) eq "restore" ? \$3 : NaN) with boxes lc rgb "#66ccee" title "restore, same layout (cold cache)", \
     "" using 1:(strcol(4) eq "reshard" ? \$3 : NaN) with boxes lc rgb "#ccbb44" title "resharding restore (cold cache)", \
     "" using 1:(\$3 + 0.02):(sprintf("%.2f", \$3)) with labels notitle, \
     0.9 with lines dt 2 lw 2 lc rgb "#aa3377" title "target save/restore 0.9", \
     0.8 with lines dt 3 lw 2 lc rgb "#228833" title "target reshard 0.8", \
     1.0 with lines lw 1 lc rgb "#777777" title "raw disk"
GNUPLOT
  rm -f "$data"
  echo "bench: wrote $PNG"
}

if [ $REPORT_ONLY -eq 0 ]; then
  run_suite
  if [ $QUICK -eq 1 ]; then rm -rf "$DATA_DIR"; fi
fi
[ -f "$CSV" ] || { echo "bench: no $CSV" >&2; exit 1; }
if [ $REPORT_ONLY -eq 1 ]; then  # Label the plot with the suite that ran.
  SUITE=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "suite") k = i; next }
                   { print $k; exit }' "$CSV")
  if [ "$SUITE" = quick ]; then QUICK=1; fi
fi
write_markdown
write_plot
echo "bench: results in $OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "bench: ${#FAILED[@]} run(s) failed:" >&2
  printf '  mpiexec %s\n' "${FAILED[@]}" >&2
  exit 1
fi
