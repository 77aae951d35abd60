namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Diagnostics;
    using System.Linq;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>How a scheduled run over a tree goes (Invoke-BtrfsDefrag -Recurse with -MaxDuration, -StatePath or -Passes).</summary>
    public sealed record DefragScheduleOptions
    {
        /// <summary>Stop when this much time is used (between steps, never inside an exchange); null: no budget.</summary>
        public TimeSpan? MaxDuration { get; init; }

        /// <summary>Files with fewer fragments than this are left alone (not rewritten).</summary>
        public int MinimumFragments { get; init; } = 2;

        /// <summary>At most this many bytes rewritten per second (null: as fast as it goes).</summary>
        public long? MaxBytesPerSecond { get; init; }

        /// <summary>At most this many whole passes over the tree in one run.</summary>
        public int Passes { get; init; } = 1;
    }

    /// <summary>A file measured in a scheduled run and found worth defragmenting.</summary>
    internal sealed record DefragCandidate(string Path, string Root, FileStatus Status, ulong FileSystemId, long Extents, long Fragments, long BytesToRewrite, int Pass, DefragOptions Options)
    {
        /// <summary>
        /// The order of a run: fragments that can go per MiB rewritten ((fragments − 1) / MiB to rewrite,
        /// at least 1 MiB counted): a file whose fragmentation is cheap to fix comes first.
        /// </summary>
        internal double Score => (Fragments - 1) / Math.Max(1.0, BytesToRewrite / 1048576.0);
    }

    /// <summary>
    /// Invoke-BtrfsDefrag's scheduled run over a tree, the xfs_fsr way: every file is measured first
    /// (<see cref="Consider"/>: skipped when done in this pass and unchanged since, per the state file;
    /// left alone under <see cref="DefragScheduleOptions.MinimumFragments"/> or when there is nothing to
    /// rewrite), then the worth-while ones are defragmented worst first (<see cref="Ordered"/>, by
    /// <see cref="DefragCandidate.Score"/>) until the budget is used; the rewrite rate is held under
    /// <see cref="DefragScheduleOptions.MaxBytesPerSecond"/>. What was done goes to the state file file by
    /// file, so a stopped, cancelled or killed run resumes where it was. Counts go to <see cref="Summary"/>.
    /// When the run ends (or is stopped), each filesystem whose files were changed without an fsync per
    /// file (xfs) is synced once, so what the run did and recorded is on disk when it returns.
    /// </summary>
    internal sealed class DefragSchedule : IDisposable
    {
        /// <summary>A directory on each filesystem changed without an fsync per file (xfs), synced when the run ends.</summary>
        private readonly Dictionary<ulong, SafeFileDescriptor> unsynced = new();

        /// <summary>Each tree's root, open from when it is measured: a candidate is opened again from it, one name at a time.</summary>
        private readonly Dictionary<string, SafeFileDescriptor> rootDirectories = new(StringComparer.Ordinal);

        private readonly DefragScheduleOptions schedule;
        private readonly DefragState? state;
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly List<DefragCandidate> candidates = new();
        private readonly Dictionary<(ulong, string), int> passOfTree = new();
        private readonly Stopwatch rewriteClock = new();
        private readonly Dictionary<(uint, uint), ulong> fileSystemOfDevice = new();
        private readonly HashSet<(ulong, ulong)> takenThisPass = new();
        private readonly List<DefragCandidate> leftForNextRun = new();
        private readonly Dictionary<ulong, (long Bytes, TimeSpan Time)> observed = new();
        private readonly Dictionary<ulong, double?> recordedRates = new();

        /// <summary>A file's rewrite is a sample of the rate when it took this long, or was at least <see cref="MinimumSampleBytes"/>.</summary>
        private static readonly TimeSpan MinimumSampleTime = TimeSpan.FromSeconds(0.25);

        /// <summary>
        /// How far the throttle lets the rewrite fall behind the rate and still catch up (the writes of a quarter
        /// second, one step): time lost beyond it (the disk stalled, the filesystem was frozen) is not made up
        /// by a burst at full speed afterwards, which would starve the VMs the limit is for.
        /// </summary>
        private static readonly TimeSpan MaximumCatchUp = TimeSpan.FromSeconds(0.25);

        private const long MinimumSampleBytes = 32L << 20;
        private long throttled;
        private TimeSpan forgiven; // time the rewrite fell behind the rate beyond MaximumCatchUp: never made up
        private int handedOut;
        private long rewrittenOfRemaining; // what a file the budget stopped mid-way had rewritten (it remains, with less to do)

        internal DefragSchedule(DefragScheduleOptions schedule, DefragState? state)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(schedule.MinimumFragments, 1);
            ArgumentOutOfRangeException.ThrowIfLessThan(schedule.Passes, 1);
            this.schedule = schedule;
            this.state = state;
        }

        /// <summary>
        /// The options a file is defragmented with: those given for it (a piped object brings its own threshold),
        /// throttled: steps small enough (a quarter second's worth) that the rate holds over short spans, and
        /// btrfs writes each step back at once (otherwise the writes come later, all together).
        /// </summary>
        internal DefragOptions For(DefragOptions given) => schedule.MaxBytesPerSecond is long rate
            ? given with { StepSize = Math.Clamp(rate / 4, 256 * 1024, given.StepSize), Flush = true }
            : given;

        /// <summary>
        /// What decides whether a file is worth it or left alone, as recorded with it: a file recorded under other
        /// criteria is measured again (left alone under -MinimumFragments 1000 does not mean done under 2; a range
        /// done is not the whole file). Without a range, the text earlier versions recorded.
        /// </summary>
        private string Criteria(DefragOptions o) => string.Create(
            CultureInfo.InvariantCulture,
            $"threshold {o.ExtentThreshold}; minimum fragments {schedule.MinimumFragments}; shared {o.IncludeShared}; compress {o.Compress?.ToString() ?? "no"} {o.CompressionLevel}{(o.Offset != 0 || o.Length is not null ? $"; range {o.Offset} {o.Length?.ToString(CultureInfo.InvariantCulture) ?? "end"}" : string.Empty)}");

        /// <summary>The counts so far.</summary>
        internal DefragRunSummary Summary { get; } = new();

        /// <summary>The budget is used up.</summary>
        internal bool BudgetSpent => schedule.MaxDuration is TimeSpan max && clock.Elapsed >= max;

        /// <summary>
        /// Half the budget went to measuring: the rest is kept for defragmenting (the next run measures on, passing over what
        /// is recorded). Only once a file was measured anew in this run, though, or the whole budget is gone: passing over
        /// the files recorded as done in the pass (each run walks the trees from the top) must not keep every run from
        /// reaching a new one (before: with a small budget for a large tree, runs measured 322, 749, ... 0 new files, and
        /// the pass never completed; a hostile test).
        /// </summary>
        internal bool MeasuringBudgetSpent => schedule.MaxDuration is TimeSpan max && (clock.Elapsed >= max || (clock.Elapsed >= max / 2 && Summary.FilesMeasured > 0));

        /// <summary>Time left of the budget (null without one).</summary>
        internal TimeSpan? TimeLeft => schedule.MaxDuration is TimeSpan max ? max - clock.Elapsed : null;

        /// <summary>Files measured and found worth defragmenting, not yet handed out.</summary>
        internal int Pending => candidates.Count - handedOut;

        /// <summary>Time used so far.</summary>
        internal TimeSpan Elapsed => clock.Elapsed;

        /// <summary>The pass the tree at <paramref name="root"/> (on the filesystem of <paramref name="fs"/>) is in, per the state file.</summary>
        internal int PassOf(ulong fs, string root)
        {
            if (!passOfTree.TryGetValue((fs, root), out int pass))
            {
                (pass, _) = state?.PassOf(fs, root) ?? (1, 0);
                Record(st => st.Begin(fs, root, pass));
                passOfTree[(fs, root)] = pass;
                recordedPassOfTree[(fs, root)] = pass;
            }

            return pass;
        }

        /// <summary>
        /// The pass of the tree as the state file has it, where the next run resumes: <see cref="PassOf"/>, unless the
        /// recording stopped before a completed pass was written (before: the summary said the next pass, which the next run
        /// did not start; a hostile review).
        /// </summary>
        internal int RecordedPassOf(ulong fs, string root) =>
            recordedPassOfTree.TryGetValue((fs, root), out int pass) ? pass : PassOf(fs, root);

        private readonly Dictionary<(ulong, string), int> recordedPassOfTree = new();

        /// <summary>
        /// Measures one file of the tree (never through a symbolic link; relative to its directory when
        /// walked). Returns the result to report for a file left alone (null when it is a candidate, or was
        /// done in this pass and is unchanged: then nothing is reported).
        /// </summary>
        internal DefragResult? Consider(string root, string path, FileLocation? location, int pass, DefragOptions given)
        {
            DefragOptions options = For(given);
            string criteria = Criteria(options);
            FileStatus? st = location is FileLocation l ? FileStatus.OfAt(l.Directory, l.Name) : FileStatus.OfPath(path, followLinks: false);
            if (st is not FileStatus status || !status.IsRegular)
            {
                return null; // gone (or replaced by something else) since the listing: nothing to do
            }

            if (state?.OwnFiles.Contains((status.DevMajor, status.DevMinor, status.Inode)) == true)
            {
                return null; // the state file itself (or its -wal, -shm): it changes while the run writes it
            }

            // Done in this pass and unchanged since: not even opened (the filesystem id is known from an earlier file of its device).
            // Rewritten with -Compress, or in steps written back one by one (a throttle's, -Flush), in an earlier pass (or
            // run) under the same criteria: done until it changes. Another such rewrite would lay it out the same way: a
            // throttled btrfs rewrite can leave a step per extent, and rewrote them on every later pass and night, 7 -> 7
            // extents (a hostile review). A run without them measures it again in its next pass, and joins them.
            bool sticky = options.Compress is not null || options.Flush;
            if (fileSystemOfDevice.TryGetValue((status.DevMajor, status.DevMinor), out ulong known)
                && (state?.IsDone(known, status, pass, criteria, sticky) == true || RewrittenEarlier(known, status, criteria, sticky)))
            {
                AlreadyDone(known, status.Inode);
                return null;
            }

            Defragmenter prepared;
            try
            {
                prepared = location is FileLocation at ? Defragmenter.Prepare(at, options) : Defragmenter.Prepare(path, options);
            }
            catch (FileOperationException ex) when (ex.Kind is FileErrorKind.AccessDenied or FileErrorKind.ReadOnlySnapshot)
            {
                // What this user may never rewrite (a read-only snapshot in the tree, a file without write
                // permission) is left alone as an immutable file is: no failure of the pass, which would then
                // never complete, and not recorded (looked at again, cheaply, by the next run); counted for one
                // warning. A filesystem mounted (or gone) read-only stays an error for every file: loud.
                // A file under -MinimumFragments is left alone whoever runs it: counted so first, as a run that may write
                // it counts it (before: as not writable, so the summary differed with the user; a hostile review).
                // A file of several names (hard links) once, as a file this run may write is (a review: each name counted).
                if (!unwritableSeen.Add((status.DevMajor, status.DevMinor, status.Inode)))
                {
                    return null;
                }

                Summary.FilesMeasured++;
                if (FragmentsReadOnly(path, location, options) is long fragments && fragments < schedule.MinimumFragments)
                {
                    Summary.FilesBelowMinimum++;
                    return new DefragResult { Path = path, Skipped = true, SkipReason = DefragSkipReason.BelowMinimum, Reason = $"{fragments} fragment(s), under -MinimumFragments {schedule.MinimumFragments}: left alone" };
                }

                Summary.FilesSkipped++;
                NotWritable++;
                return new DefragResult { Path = path, Skipped = true, SkipReason = DefragSkipReason.NotWritable, Reason = "not writable by this run: " + ex.Message.TrimEnd('.') };
            }
            catch (FileOperationException)
            {
                // Measured, and failed (too little space for it, a read-only filesystem): counted in both, as a file
                // that fails at its turn is. (Before: in FilesFailed only, so the summary did not add up.)
                Summary.FilesMeasured++;
                throw;
            }

            using Defragmenter d = prepared;
            ulong fs = d.FileSystemId;
            fileSystemOfDevice[(status.DevMajor, status.DevMinor)] = fs;
            if (state?.IsDone(fs, status, pass, criteria, sticky) == true || RewrittenEarlier(fs, status, criteria, sticky))
            {
                AlreadyDone(fs, d.Status.Inode);
                return null;
            }

            if (!takenThisPass.Add((fs, d.Status.Inode)))
            {
                return null; // another name of a file taken already (a hard link, or a tree inside another given)
            }

            Summary.FilesMeasured++;
            if (d.FragmentsBefore < schedule.MinimumFragments)
            {
                Summary.FilesBelowMinimum++;
                string why = $"{d.FragmentsBefore} fragment(s), under -MinimumFragments {schedule.MinimumFragments}: left alone";
                Record(st => st.MarkDone(fs, d.Status, pass, path, "skipped: " + why, d.ExtentsBefore, d.ExtentsBefore, criteria));
                return d.Skipped(DefragSkipReason.BelowMinimum, why);
            }

            if (d.SkipReason is string reason)
            {
                Summary.FilesSkipped++;
                Record(st => st.MarkDone(fs, d.Status, pass, path, "skipped: " + reason, d.ExtentsBefore, d.ExtentsBefore, criteria));
                return d.Skipped();
            }

            candidates.Add(new DefragCandidate(path, root, d.Status, fs, d.ExtentsBefore, d.FragmentsBefore, d.BytesToRewrite, pass, options));
            Summary.BytesToRewrite += d.BytesToRewrite;
            return null;
        }

        /// <summary>Files this run may not write, seen in this pass (device and inode): each counted once, whatever its names.</summary>
        private readonly HashSet<(uint, uint, ulong)> unwritableSeen = new();

        /// <summary>The file's fragments, read without writing anything (FIEMAP without a sync); null where it cannot be read.</summary>
        private static long? FragmentsReadOnly(string path, FileLocation? location, DefragOptions options)
        {
            try
            {
                using OpenFile file = location is FileLocation at ? OpenFile.Open(at, OpenOptions.NoFollow | OpenOptions.KnownRegular) : OpenFile.Open(path, OpenOptions.NoFollow);
                return FragmentationAnalyzer.Count(file, options.ExtentThreshold, sync: false).FragmentCount;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>A file done in this pass by an earlier run and unchanged: counted once, whatever number of its names (hard links) the walk meets.</summary>
        private void AlreadyDone(ulong fs, ulong inode)
        {
            if (takenThisPass.Add((fs, inode)))
            {
                Summary.FilesAlreadyDone++;
            }
        }

        /// <summary>A candidate that changed during its turn (a writer, while it was copied): not recorded, so the next run measures it again; counted with the files that changed.</summary>
        internal void ChangedDuringTurn(DefragCandidate c)
        {
            Summary.FilesChanged++;
            Summary.BytesToRewrite -= c.BytesToRewrite;
        }

        /// <summary>
        /// A candidate defragmented in part (a writer changed it meanwhile; the rest stayed as it was): what it rewrote
        /// counts, and it counts as changed, not done: not recorded, so the next run measures it again (before: recorded
        /// as done in this pass, as it was after the writer; found by a review).
        /// </summary>
        internal void DoneInPart(DefragCandidate c, DefragResult result)
        {
            ChangedDuringTurn(c);
            throttled += result.BytesRewritten;
            Summary.BytesRewritten += result.BytesRewritten;
        }

        /// <summary>The candidates, worst first (highest <see cref="DefragCandidate.Score"/>; then more fragments; then by path). Each is taken off the list as it is handed out.</summary>
        internal IEnumerable<DefragCandidate> Ordered()
        {
            MeasuredIn ??= clock.Elapsed;
            candidates.Sort((x, y) =>
            {
                int c = y.Score.CompareTo(x.Score);
                c = c != 0 ? c : y.Fragments.CompareTo(x.Fragments);
                return c != 0 ? c : string.CompareOrdinal(x.Path, y.Path);
            });
            while (handedOut < candidates.Count)
            {
                yield return candidates[handedOut++];
            }

            candidates.Clear();
            takenThisPass.Clear();
            unwritableSeen.Clear();
            handedOut = 0;
        }

        /// <summary>A candidate that needs more than a run has for rewriting (<see cref="NeverFits"/>): not done, not remaining (<see cref="DefragRunSummary.FilesTooLongForBudget"/>), once a run.</summary>
        internal void TooLongForBudget(DefragCandidate c)
        {
            if (tooLong.Add(c.Path))
            {
                Summary.FilesTooLongForBudget++;
            }
        }

        private readonly HashSet<string> tooLong = new(StringComparer.Ordinal);

        /// <summary>A candidate that does not fit in the time left: not done in this run, counted as remaining.</summary>
        internal void LeaveForNextRun(DefragCandidate c) => leftForNextRun.Add(c);

        /// <summary>The candidate last handed out was not finished (the budget ran out during it): it counts as remaining.</summary>
        internal void PutBack() => handedOut = Math.Max(0, handedOut - 1);

        /// <summary>
        /// The budget ran out during the candidate last handed out: it counts as remaining, and what it had rewritten by
        /// then as rewritten, not also as left to rewrite.
        /// </summary>
        internal void StoppedPartway(Defragmenter d)
        {
            PutBack();
            Summary.BytesRewritten += d.BytesRewrittenSoFar;
            rewrittenOfRemaining += d.BytesRewrittenSoFar;
        }

        /// <summary>The filesystem id (statfs f_fsid) of a tree's root, and whether the state file knows only other filesystems.</summary>
        internal (ulong FileSystemId, bool StateIsForeign) TreeIdentity(string root)
        {
            using OpenFile f = OpenFile.Open(root, OpenOptions.AllowDirectory);
            ulong fs = Files.FileSystemIdOf(f.Handle);
            if (f.Status.IsDirectory && !rootDirectories.ContainsKey(root))
            {
                rootDirectories[root] = DirectoryHandle.Duplicate(f.Handle, root);
            }

            return (fs, state?.OnlyOtherFileSystems(fs) == true);
        }

        /// <summary>
        /// Opens a candidate again for its turn: from its tree's root, one name at a time, never through a
        /// symbolic link (a directory swapped for a link since it was measured leads nowhere: nothing behind
        /// the link is opened), and only if it is still the inode measured (otherwise null: the next run
        /// measures what is there).
        /// </summary>
        internal Defragmenter? Reopen(DefragCandidate c)
        {
            Defragmenter d;
            try
            {
                d = OpenBelowRoot(c) ?? Defragmenter.Prepare(c.Path, c.Options);
            }
            catch (FileOperationException ex) when (ex.Kind is FileErrorKind.NotFound or FileErrorKind.SymbolicLinkLoop or FileErrorKind.IsSymbolicLink or FileErrorKind.NotRegularFile or FileErrorKind.IsDirectory)
            {
                Summary.FilesChanged++;
                return null;
            }

            // The same inode (another file under the name is measured again by the next run), and still worth
            // it. A file written meanwhile (a running VM's image) was measured again just now, by Prepare: it is
            // defragmented as it is now, not dropped (it would be at every run's turn).
            if (!d.Status.SameInode(c.Status) || d.FragmentsBefore < schedule.MinimumFragments)
            {
                d.Dispose();
                Summary.FilesChanged++;
                return null;
            }

            return d;
        }

        /// <summary>
        /// The candidate opened from the descriptor of its tree's root (the walk's own way), or null when it
        /// is the root itself (a file the user named). A name on the way that is no longer a directory
        /// (a symbolic link now, or gone) ends it like a file that is gone.
        /// </summary>
        private Defragmenter? OpenBelowRoot(DefragCandidate c)
        {
            string root = c.Root.Length > 1 ? c.Root.TrimEnd('/') : c.Root;
            string prefix = root == "/" ? "/" : root + "/";
            if (!rootDirectories.TryGetValue(c.Root, out SafeFileDescriptor? rootDir) || !c.Path.StartsWith(prefix, StringComparison.Ordinal))
            {
                return null;
            }

            string relative = c.Path[prefix.Length..];
            int slash = relative.LastIndexOf('/');
            using SafeFileDescriptor dir = DirectoryHandle.OpenBelow(rootDir, slash < 0 ? string.Empty : relative[..slash], c.Path);
            return Defragmenter.Prepare(new FileLocation(dir, relative[(slash + 1)..], c.Path), c.Options);
        }

        /// <summary>The token a file's defragmentation runs with: Ctrl+C, or the budget running out.</summary>
        internal CancellationTokenSource TokenFor(CancellationToken stop)
        {
            var cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
            if (schedule.MaxDuration is TimeSpan max)
            {
                TimeSpan left = max - clock.Elapsed;
                cts.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }

            return cts;
        }

        /// <summary>
        /// Holds the rewrite rate: called with a file's bytes done so far, it sleeps until the run's bytes
        /// rewritten, divided by the time the run has rewritten for, are at most the limit. Where the rewrite
        /// fell behind (a stall), at most <see cref="MaximumCatchUp"/> is caught up: over any T seconds of
        /// rewriting, at most the rate times (T + 0.25 s) plus one step, not only on average over the run. Cancellable.
        /// </summary>
        internal void Throttle(long fileBytesDone, CancellationToken cancel)
        {
            if (schedule.MaxBytesPerSecond is not long rate)
            {
                return;
            }

            long total = throttled + fileBytesDone;
            TimeSpan due = forgiven + TimeSpan.FromSeconds(Math.Min(total / (double)rate, MaximumSeconds));
            TimeSpan wait = due - rewriteClock.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                cancel.WaitHandle.WaitOne(wait);
            }
            else if (-wait > MaximumCatchUp)
            {
                forgiven += -wait - MaximumCatchUp;
            }
        }

        /// <summary>Runs the rewrite clock (the throttle's time) while a file is rewritten.</summary>
        internal void StartRewriting() => rewriteClock.Start();

        /// <summary>Stops the rewrite clock between files (measuring, syncing and asking do not build up credit for a burst).</summary>
        internal void StopRewriting(long bytesOfUnfinishedFile = 0)
        {
            rewriteClock.Stop();
            throttled += bytesOfUnfinishedFile;
        }

        /// <summary>
        /// Whether the candidate can be done in the time left, judged by the rate of its filesystem
        /// (<see cref="RateFor"/>); true when there is no budget or no rate yet.
        /// </summary>
        internal bool Fits(DefragCandidate c) =>
            TimeLeft is not TimeSpan left || TimeNeeded(c) is not TimeSpan needed || needed <= left;

        /// <summary>
        /// True when the candidate needs more than a run with this -MaxDuration has for rewriting, at the rate seen: the
        /// budget less what measuring took in this run before the first file's turn (every run measures first). No run
        /// that measures as much can do it (the caller says so, rather than leave it for a next run forever; a review: a
        /// file needing a little less than the whole budget was left "for the next run" by every run, StoppedByBudget).
        /// </summary>
        internal bool NeverFits(DefragCandidate c, out TimeSpan needed)
        {
            needed = TimeNeeded(c) ?? TimeSpan.Zero;
            if (schedule.MaxDuration is not TimeSpan max)
            {
                return false;
            }

            // More than the whole budget, or than what is left of it after this run's measuring. A run that measures less
            // (one resuming a pass with a state file) might have had the time: the warning says so. Judged so rather than
            // left as remaining, which kept the pass open forever for a file needing almost the whole budget (a review);
            // this way the pass completes and the file is named every night until the budget or the file changes.
            return needed > max || (RewritingBudget is TimeSpan most && needed > most);
        }

        /// <summary>What a run with this -MaxDuration has for rewriting: the budget less this run's measuring before the first turn; null without a budget.</summary>
        internal TimeSpan? RewritingBudget => schedule.MaxDuration is TimeSpan max ? max - (MeasuredIn ?? TimeSpan.Zero) : null;

        /// <summary>The time the measuring took before the first file's turn (null before it).</summary>
        internal TimeSpan? MeasuredIn { get; private set; }

        /// <summary>
        /// Whether the candidate is judged by a rate an earlier run recorded (not -MaxBytesPerSecond, nothing
        /// seen on its filesystem in this run yet): one sample, perhaps of a slow file, that this run can
        /// measure again by trying.
        /// </summary>
        internal bool JudgedByRecordedRate(DefragCandidate c) =>
            schedule.MaxBytesPerSecond is null && !observed.ContainsKey(c.FileSystemId) && RateFor(c) is not null;

        /// <summary>
        /// The rewrite rate a candidate is judged by, and where it comes from: the throttle's; else the one
        /// this run saw on its filesystem (files of at least 32 MiB or a quarter second); else the one the state file
        /// recorded for that filesystem from an earlier run (so that a run knows from its start that a file
        /// does not fit, rather than spend its budget on it and stop in it, night after night); null before any.
        /// </summary>
        internal (double Rate, string Source)? RateFor(DefragCandidate c)
        {
            if (schedule.MaxBytesPerSecond is long limit)
            {
                return (limit, "-MaxBytesPerSecond");
            }

            if (observed.TryGetValue(c.FileSystemId, out (long Bytes, TimeSpan Time) seen) && seen.Time > TimeSpan.Zero && seen.Bytes > 0)
            {
                return (seen.Bytes / seen.Time.TotalSeconds, "the rate seen on its filesystem in this run");
            }

            if (!recordedRates.TryGetValue(c.FileSystemId, out double? recorded))
            {
                recordedRates[c.FileSystemId] = recorded = state?.RateOf(c.FileSystemId);
            }

            return recorded is double r ? (r, "the rate an earlier run saw on its filesystem, recorded in the state file") : null;
        }

        /// <summary>
        /// A file's rewrite on <paramref name="fs"/> took <paramref name="time"/> for <paramref name="bytes"/>
        /// (finished, skipped after copying, or stopped): the run's rate there, recorded for the next run
        /// when it is the filesystem's own (not held down by -MaxBytesPerSecond).
        /// </summary>
        internal void Rewrote(ulong fs, long bytes, TimeSpan time)
        {
            // A file rewritten in under a quarter second, unless large, says more about what every file costs
            // (opening, measuring, fsync) than about the rate: not a sample (a night of small files would
            // otherwise record a rate at which a large file never seems to fit, and it would never be tried).
            if (bytes <= 0 || (time < MinimumSampleTime && bytes < MinimumSampleBytes))
            {
                return;
            }

            (long Bytes, TimeSpan Time) seen = observed.TryGetValue(fs, out var before) ? before : default;
            seen = (seen.Bytes + bytes, seen.Time + time);
            observed[fs] = seen;
            if (schedule.MaxBytesPerSecond is null && state is not null && RecordingStopped is null)
            {
                state.RecordRate(fs, seen.Bytes, seen.Time.TotalSeconds);
            }
        }

        private TimeSpan? TimeNeeded(DefragCandidate c) => RateFor(c) is (double rate and > 0, _) ? TimeSpan.FromSeconds(Math.Min(c.BytesToRewrite / rate, MaximumSeconds)) : null;

        /// <summary>Longer than any budget (-MaxDuration stops at 24 days), and far inside TimeSpan.</summary>
        private const double MaximumSeconds = 1e9;

        /// <summary>Counts the bytes a file outside a scheduled run rewrote (for the throttle).</summary>
        internal void Done(DefragResult result) => throttled += result.BytesRewritten;

        /// <summary>Counts a file defragmented and records it (as it is now) in the state file.</summary>
        internal void Done(DefragCandidate c, Defragmenter d, DefragResult result)
        {
            throttled += result.BytesRewritten;
            Summary.FilesDefragmented++;
            Summary.BytesRewritten += result.BytesRewritten;
            Summary.BytesToRewrite -= c.BytesToRewrite;
            Summary.ExtentsBefore += result.ExtentsBefore;
            Summary.ExtentsAfter += result.ExtentsAfter;
            Summary.FragmentsBefore += result.FragmentsBefore;
            Summary.FragmentsAfter += result.FragmentsAfter;
            if (!d.SyncWhenFinished && !unsynced.ContainsKey(c.FileSystemId))
            {
                // One directory of the filesystem kept, to sync it when the run ends; where none can be kept, synced now.
                if (d.TryDuplicateDirectory() is SafeFileDescriptor dir)
                {
                    unsynced[c.FileSystemId] = dir;
                }
                else
                {
                    d.SyncFileSystem();
                }
            }

            FileStatus now = d.StatusNow() ?? d.Status;
            string criteria = Criteria(c.Options);
            bool notImproved = result.NoImprovement;
            if (notImproved)
            {
                Summary.FilesNotImproved++;
            }

            if (c.Options.Compress is not null || c.Options.Flush || notImproved)
            {
                recompressed[(c.FileSystemId, now.Inode)] = (now, criteria, notImproved);
            }

            Record(st => st.MarkDone(c.FileSystemId, now, c.Pass, c.Path, (notImproved ? DefragState.NoImprovementOutcome : string.Empty) + result.Reason, result.ExtentsBefore, result.ExtentsAfter, criteria));
        }

        /// <summary>
        /// Files this run rewrote with -Compress or in steps written back one by one, or that came out of a rewrite with no
        /// fewer extents or fragments (btrfs, where the free space is as fragmented), as they were after it (and under which
        /// criteria): a later pass of the run leaves them alone while unchanged (-Compress makes every file worth it, so
        /// each pass rewrote every file again; a throttled rewrite again would lay it out the same way; a rewrite with no
        /// gain was repeated in every pass, 64 -> 64 extents each time; hostile reviews). Across runs the state file does
        /// the same (<see cref="DefragState.IsDone"/>).
        /// </summary>
        private readonly Dictionary<(ulong Fs, ulong Inode), (FileStatus Status, string Criteria, bool NotImproved)> recompressed = new();

        /// <summary>
        /// Whether the file was rewritten earlier in this run under the same criteria, with -Compress or in steps
        /// (<paramref name="sticky"/>), or with no improvement, and has not changed since.
        /// </summary>
        private bool RewrittenEarlier(ulong fs, in FileStatus st, string criteria, bool sticky) =>
            recompressed.TryGetValue((fs, st.Inode), out var done) && (sticky || done.NotImproved) && done.Criteria == criteria && done.Status.SameContentStamp(st);

        /// <summary>
        /// Why the state file stopped recording (a full disk, an I/O error), for one warning; the run goes on
        /// without recording (what is not recorded is measured again by the next run). Null while it records.
        /// </summary>
        internal FileOperationException? RecordingStopped { get; private set; }

        /// <summary>Files left alone because this run may not write them (SkipReason NotWritable).</summary>
        internal int NotWritable { get; private set; }

        /// <summary>Writes to the state file, unless an earlier write failed; a failure stops the recording, not the run.</summary>
        private void Record(Action<DefragState> write)
        {
            if (state is null || RecordingStopped is not null)
            {
                return;
            }

            try
            {
                write(state);
            }
            catch (FileOperationException ex)
            {
                RecordingStopped = ex;
            }
        }

        /// <summary>A candidate that, opened for its turn, had nothing left to do (or could not be): counted, and recorded as done.</summary>
        internal void Skipped(DefragCandidate c, Defragmenter d, string reason)
        {
            Summary.FilesSkipped++;
            Summary.BytesToRewrite -= c.BytesToRewrite;
            Record(st => st.MarkDone(c.FileSystemId, d.StatusNow() ?? d.Status, c.Pass, c.Path, "skipped: " + reason, d.ExtentsBefore, d.ExtentsBefore, Criteria(c.Options)));
        }

        /// <summary>A pass over one tree is complete (every candidate handed out and the budget not spent): the state file moves it to the next pass.</summary>
        internal void CompletePass(ulong fs, string root, int pass)
        {
            Record(st => st.CompletePass(fs, root, pass));
            passOfTree[(fs, root)] = pass + 1;
            if (RecordingStopped is null)
            {
                recordedPassOfTree[(fs, root)] = pass + 1;
            }
        }

        /// <summary>The summary, final: time used, and what is left.</summary>
        internal DefragRunSummary Finish(bool stoppedByBudget)
        {
            SyncChangedFileSystems();
            Summary.Duration = clock.Elapsed;
            Summary.StoppedByBudget = stoppedByBudget;
            Summary.FilesRemaining = Pending + leftForNextRun.Count;
            Summary.BytesToRewrite = Math.Max(0, candidates.Skip(handedOut).Concat(leftForNextRun).Sum(c => c.BytesToRewrite) - rewrittenOfRemaining);
            Summary.StatePath = state?.Path;
            return Summary;
        }

        /// <summary>Syncs what is left unsynced (a stopped run too).</summary>
        public void Dispose()
        {
            SyncChangedFileSystems();
            foreach (SafeFileDescriptor dir in rootDirectories.Values)
            {
                dir.Dispose();
            }

            rootDirectories.Clear();
        }

        /// <summary>
        /// syncfs once per filesystem changed without an fsync per file: one log force instead of one per
        /// file (each cost 90 ms per 128 MiB file on xfs). A failure is not the run's: the changes stay in
        /// the log, which xfs writes within about 30 s anyway.
        /// </summary>
        private void SyncChangedFileSystems()
        {
            foreach (SafeFileDescriptor dir in unsynced.Values)
            {
                _ = Files.TrySyncFileSystem(dir);
                dir.Dispose();
            }

            unsynced.Clear();
        }
    }

    /// <summary>Half the budget went to measuring: the walk stops (thrown through the tree walker by the cmdlet's measuring step, caught by the cmdlet).</summary>
    internal sealed class DefragMeasuringStopped : Exception
    {
    }
}
