namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Management.Automation;
    using System.Threading;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag: defragments files on btrfs (ranges rewritten in place), xfs and ext4 (a
    /// new copy's extents exchanged in whole, the xfs_fsr way), leaving shared extents shared unless asked.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "BtrfsDefrag", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.Pages + "Invoke-BtrfsDefrag.md")]
    [OutputType(typeof(DefragResult), typeof(DefragRunSummary))]
    public sealed class InvokeBtrfsDefragCommand : RecursiveFileCmdletBase, IDisposable
    {
        private readonly List<(string Root, ulong FileSystemId, DefragOptions Options)> roots = new(); // each with the options it came with (a piped object's threshold)
        private ProgressBars? bars;
        private bool levelWarned;
        private DefragState? state;
        private DefragSchedule? schedule;

        /// <summary>Files of a scheduled run declined at a confirmation prompt (they keep the pass open).</summary>
        private int declined;

        /// <summary>With -Recurse: stop when this much time is used (between steps, never inside an exchange), then report what is left.</summary>
        [Parameter]
        public TimeSpan MaxDuration { get; set; }

        /// <summary>With -Recurse: the state file (SQLite) a stopped run resumes from; created when missing.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? StatePath { get; set; }

        /// <summary>With -Recurse: at most this many whole passes over the tree in this run (default 1).</summary>
        [Parameter]
        [ValidateRange(1, 100)]
        public int Passes { get; set; } = 1;

        /// <summary>Files with fewer fragments than this are left alone (a scheduled run: default 2, every fragmented file; 1 with -Compress).</summary>
        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int MinimumFragments { get; set; } = 2;

        /// <summary>Rewrite at most this many bytes per second.</summary>
        [Parameter]
        [ValidateRange(4096, long.MaxValue)]
        public long MaxBytesPerSecond { get; set; }

        /// <summary>Extents shorter than this are rewritten (bytes; default 32 MiB). Binds Measure-Fragmentation's Threshold from the pipeline.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("Threshold")]
        [ValidateRange(4096, long.MaxValue)]
        public long ExtentThreshold { get; set; } = FragmentationAnalyzer.DefaultThreshold;

        /// <summary>Recompress with this algorithm.</summary>
        [Parameter]
        public DefragCompression Compress { get; set; }

        /// <summary>Compression level, where the kernel accepts one.</summary>
        [Parameter]
        [ValidateRange(-15, 15)]
        public int CompressionLevel { get; set; }

        /// <summary>First byte of the range to defragment.</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long Offset { get; set; }

        /// <summary>Bytes to defragment from Offset.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long Length { get; set; }

        /// <summary>Bytes per kernel call (default 64 MiB).</summary>
        [Parameter]
        [ValidateRange(256 * 1024, long.MaxValue)]
        public long StepSize { get; set; } = DefragOptions.DefaultStepSize;

        /// <summary>Start writeback with every call.</summary>
        [Parameter]
        public SwitchParameter Flush { get; set; }

        /// <summary>Also rewrite extents shared with reflink copies or snapshots (they stop sharing).</summary>
        [Parameter]
        public SwitchParameter IncludeShared { get; set; }

        /// <summary>Do not ask before unsharing extents with -IncludeShared.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        private DefragOptions Options { get; set; } = new();

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            bool hasCompress = MyInvocation.BoundParameters.ContainsKey(nameof(Compress));
            if (MyInvocation.BoundParameters.ContainsKey(nameof(CompressionLevel)) && !hasCompress)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("CompressionLevelWithoutCompress", "-CompressionLevel needs -Compress: the level belongs to the algorithm that recompresses the data."));
            }

            bool scheduling = Bound(nameof(MaxDuration)) || Bound(nameof(StatePath)) || Bound(nameof(Passes));
            if (scheduling && !Recursing)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("ScheduleWithoutRecurse", "-MaxDuration, -StatePath and -Passes plan a run over a tree: give -Recurse (and a directory)."));
            }

            if (Bound(nameof(MaxDuration)) && (MaxDuration < TimeSpan.FromSeconds(1) || MaxDuration > TimeSpan.FromDays(24)))
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("MaxDurationOutOfRange", $"-MaxDuration {MaxDuration} is out of range: give from one second to 24 days, as a time span such as 02:00:00 or (New-TimeSpan -Hours 2) (a bare number is read as ticks of 100 ns)."));
            }

            string path = string.Empty;
            if (StatePath is not null && PathBinding.UnresolvedFileSystemPath(this, StatePath, out path) is { } notAFile)
            {
                ThrowTerminatingError(notAFile); // -WhatIf too: what the real run would refuse
            }

            if (StatePath is not null && WhatIfInEffect)
            {
                WriteVerbose($"-WhatIf: the state file '{StatePath}' is not opened (opening it could change it); every file is measured.");
            }
            else if (StatePath is not null)
            {
                try
                {
                    state = DefragState.Open(path);
                }
                catch (FileOperationException ex) when (ex.Kind is FileErrorKind.DatabaseCorrupt or FileErrorKind.DatabaseNotOurs or FileErrorKind.DatabaseNewerVersion or FileErrorKind.IsSymbolicLink or FileErrorKind.NotRegularFile or FileErrorKind.IsDirectory)
                {
                    WriteWarning(ex.Message + " This run goes on without it: nothing is resumed, and nothing is recorded.");
                }
                catch (FileOperationException ex)
                {
                    // In use by another run, no permission, a full disk: running without it would redo the other run's work.
                    ThrowTerminatingError(ErrorRecords.From(ex));
                }
            }

            bars = new ProgressBars(this, "Invoke-BtrfsDefrag", 0x4446);
            var options = new DefragScheduleOptions
            {
                MaxDuration = Bound(nameof(MaxDuration)) ? MaxDuration : null,
                // Recompressing is worth it whatever the fragments: then every file counts unless told otherwise.
                MinimumFragments = Bound(nameof(MinimumFragments)) || !Bound(nameof(Compress)) ? MinimumFragments : 1,
                MaxBytesPerSecond = Bound(nameof(MaxBytesPerSecond)) ? MaxBytesPerSecond : null,
                Passes = Passes,
            };
            Scheduled = scheduling;
            ScheduleOptions = options;
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            schedule?.Dispose(); // a stopped run's changes synced before the state file closes
            state?.Dispose();
        }

        /// <summary>A scheduled run over trees (-MaxDuration, -StatePath or -Passes with -Recurse): measured first, worst first, one summary.</summary>
        private bool Scheduled { get; set; }

        private DefragScheduleOptions ScheduleOptions { get; set; } = new();

        private bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            // -ExtentThreshold can come with each piped object (Measure-Fragmentation's Threshold).
            Options = new DefragOptions
            {
                ExtentThreshold = ExtentThreshold,
                Compress = MyInvocation.BoundParameters.ContainsKey(nameof(Compress)) ? Compress : null,
                CompressionLevel = MyInvocation.BoundParameters.ContainsKey(nameof(CompressionLevel)) ? CompressionLevel : null,
                Offset = Offset,
                Length = MyInvocation.BoundParameters.ContainsKey(nameof(Length)) ? Length : null,
                StepSize = StepSize,
                Flush = Flush.IsPresent,
                IncludeShared = IncludeShared.IsPresent,
            };
            schedule ??= new DefragSchedule(ScheduleOptions, state);
            base.ProcessRecord();
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            if (Scheduled && schedule is not null)
            {
                RunSchedule(schedule);
            }

            bars?.Complete();
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ThrowIfDirectoryWithoutRecurse(path, false, "defragment", "defragment every file below it");
                DefragOne(path);
                return;
            }

            if (Scheduled)
            {
                // Measured now; defragmented worst first once every tree is measured (EndProcessing).
                (ulong fs, bool foreign) = schedule!.TreeIdentity(path);
                if (foreign)
                {
                    WriteWarning($"The state file '{state!.Path}' records trees of other filesystems only: nothing in it applies to '{path}', which starts at pass 1.");
                }

                roots.Add((path, fs, Options));
                MeasureTree(path, fs, Options, again: false);
                return;
            }

            ForEachInTree(path, entry =>
            {
                if (entry.Kind == WalkEntryKind.File)
                {
                    DefragOne(entry.Path, entry.Location);
                }
            });
        }

        private void MeasureTree(string root, ulong fs, DefragOptions options, bool again)
        {
            int pass = schedule!.PassOf(fs, root); // known for the summary, also for a tree not measured in this run
            if (schedule.Summary.MeasuringStopped)
            {
                return;
            }

            int errorsBefore = TreeErrors, unreachableBefore = UnreachableErrors;
            try
            {
                ForEachInTree(
                    root,
                    entry =>
                    {
                        if (schedule.MeasuringBudgetSpent)
                        {
                            throw new DefragMeasuringStopped();
                        }

                        (int percent, string note) = RunProgress(schedule);
                        bars?.ShowRun($"Measuring {entry.Path}{note}", percent);

                        if (entry.Kind == WalkEntryKind.File && schedule.Consider(root, entry.Path, entry.Location, pass, options) is DefragResult skipped)
                        {
                            LeftAlone(entry.Path, skipped.Reason, skipped.SkipReason, again);
                        }
                    },
                    again);
            }
            catch (DefragMeasuringStopped)
            {
                schedule.Summary.MeasuringStopped = true;
                if (schedule.Summary.FilesMeasured == 0)
                {
                    // Every run walks the trees from the top, passing over the files recorded as done in the pass: where that
                    // takes the whole budget, no run gets further, and the pass never completes (a hostile test: said nowhere).
                    WriteWarning($"The budget (-MaxDuration {MaxDuration}) ran out before this run measured any file anew: it passed over {schedule.Summary.FilesAlreadyDone} file(s) recorded as done in this pass, and every run walks the trees from the top, so a run with this budget cannot get further and the pass cannot complete. Give the run more time, or split the tree into smaller ones.");
                }
                else
                {
                    WriteVerbose($"Half the budget went to measuring: the files measured are defragmented now; the next run passes over the files recorded as done in this pass (they are not measured again) and measures on from there.");
                }
            }
            finally
            {
                // A file (or directory) that could not be measured is a failure of this pass: it is not complete. Names
                // that are not valid UTF-8 (an error each directory) and directories this user may not read are not: no
                // run can take them until someone acts (renames them, changes their permissions, or -Exclude leaves
                // them out), and the pass never completed while one was there, so files done in it were never looked
                // at again (hostile reviews).
                schedule.Summary.FilesFailed += TreeErrors - errorsBefore - (UnreachableErrors - unreachableBefore);
            }
        }

        /// <summary>
        /// A file a scheduled run leaves alone: a warning where the one-file command warns too (immutable,
        /// append-only, an active swapfile, a filesystem where it would be unsafe or is not supported: nothing will ever be done
        /// there until the user acts), else a verbose note. A later pass of the same run (<paramref name="again"/>)
        /// only notes it: the first pass warned already.
        /// </summary>
        private void LeftAlone(string path, string reason, DefragSkipReason kind, bool again)
        {
            bool warns = kind is DefragSkipReason.Immutable or DefragSkipReason.AppendOnly or DefragSkipReason.ActiveSwapfile or DefragSkipReason.SwapArea or DefragSkipReason.UnsafeOnThisFileSystem or DefragSkipReason.NotSupportedHere;
            if (warns && !again)
            {
                WriteWarning($"Skipping '{path}': it is {reason}.");
            }
            else
            {
                WriteVerbose($"Leaving '{path}' alone: {reason}.");
            }
        }

        /// <summary>The scheduled run: the measured files worst first, within the budget; passes; the summary.</summary>
        private void RunSchedule(DefragSchedule run)
        {
            bool stoppedByBudget = false;
            int failedBefore = 0; // files of this pass that failed, in measuring (before this) or defragmenting
            int declinedBefore = 0;
            while (true)
            {
                stoppedByBudget = !DefragCandidates(run) || run.Summary.MeasuringStopped;
                if (stoppedByBudget || WhatIfInEffect || run.Summary.FilesFailed > failedBefore || declined > declinedBefore || roots.Count == 0)
                {
                    // A pass with failures, or with files declined at a prompt, is not complete: the next run tries
                    // those files again in it. Nor is one in which no tree could be opened.
                    break;
                }

                // Every file worth it was done: the pass is complete for every tree.
                foreach ((string root, ulong fs, _) in roots)
                {
                    run.CompletePass(fs, root, run.PassOf(fs, root));
                }

                run.Summary.PassesCompleted++;
                if (run.Summary.PassesCompleted >= Passes || run.BudgetSpent)
                {
                    break;
                }

                failedBefore = run.Summary.FilesFailed;
                declinedBefore = declined;
                foreach ((string root, ulong fs, DefragOptions options) in roots)
                {
                    MeasureTree(root, fs, options, again: true);
                }
            }

            DefragRunSummary summary = run.Finish(stoppedByBudget);
            if (run.NotWritable > 0)
            {
                WriteWarning($"{run.NotWritable} file(s) were left alone because this run may not write them (in a read-only snapshot, or without write permission for this user); -Verbose names them. Run as a user who may write them to defragment them.");
            }

            if (run.RecordingStopped is FileOperationException stopped)
            {
                WriteWarning($"The state file stopped recording during the run: {stopped.Message} The run went on without recording: what it did after that is measured again by the next run (quickly: it is no longer fragmented).");
            }

            summary.Path = string.Join(", ", roots.ConvertAll(r => r.Root));
            summary.Pass = roots.Count > 0 ? roots.Min(r => run.RecordedPassOf(r.FileSystemId, r.Root)) : 1; // the tree furthest behind, as recorded
            WriteVerbose($"{summary.FilesDefragmented} file(s) defragmented ({summary.ExtentsBefore} → {summary.ExtentsAfter} extents, {SizeFormatter.Format(summary.BytesRewritten)} rewritten) in {summary.Duration.TotalSeconds:F1} s; {summary.FilesRemaining} left{(!stoppedByBudget ? string.Empty : run.BudgetSpent || run.Summary.MeasuringStopped ? " (the budget ran out)" : " (they do not fit in the time that was left)")}.");
            WriteObject(summary);
        }

        /// <summary>
        /// Defragments the measured files worst first; false when the budget ran out first. A file that
        /// does not fit in the time left (at the rate seen so far) is left for the next run, and smaller
        /// ones are tried; a file that fails is an error record, and the next one goes on. A file that only
        /// one earlier run's rate says no budget can hold is tried when everything else is done: that rate
        /// may be a slow file's, and a file never tried would never measure it again.
        /// </summary>
        private bool DefragCandidates(DefragSchedule run)
        {
            bool leftOut = false;
            var deferred = new List<DefragCandidate>();
            foreach (DefragCandidate c in run.Ordered())
            {
                if (run.BudgetSpent)
                {
                    run.PutBack();
                    deferred.ForEach(run.LeaveForNextRun);
                    return false;
                }

                if (!run.Fits(c))
                {
                    if (run.NeverFits(c, out _) && run.JudgedByRecordedRate(c))
                    {
                        deferred.Add(c);
                        continue;
                    }

                    leftOut |= Leave(run, c);
                    continue;
                }

                if (!TryCandidate(run, c))
                {
                    deferred.ForEach(run.LeaveForNextRun);
                    return false;
                }
            }

            for (int i = 0; i < deferred.Count; i++)
            {
                DefragCandidate c = deferred[i];
                if (run.BudgetSpent)
                {
                    deferred.Skip(i).ToList().ForEach(run.LeaveForNextRun);
                    return false;
                }

                if (!run.Fits(c))
                {
                    if (!(run.NeverFits(c, out _) && run.JudgedByRecordedRate(c)))
                    {
                        leftOut |= Leave(run, c); // judged by this run's own rate by now
                        continue;
                    }

                    WriteWarning($"'{c.Path}' would need {Needs(run, c)}, more than the {Seconds(run.RewritingBudget ?? MaxDuration)} a run with -MaxDuration {Seconds(MaxDuration)} has for rewriting. That is one earlier run's rate, perhaps of a slower file: it is tried all the same now that the other files are done, which measures the rate again; if the rate is right, the budget stops it between steps.");
                }

                if (!TryCandidate(run, c))
                {
                    deferred.Skip(i).ToList().ForEach(run.LeaveForNextRun);
                    return false;
                }
            }

            return !leftOut;
        }

        /// <summary>
        /// A candidate that does not fit in the time left: left for the next run (true). One that no run with this
        /// budget could hold is not (false): a warning, once a run, and counted in FilesTooLongForBudget, neither
        /// remaining nor stopping the pass (before: StoppedByBudget True with most of the budget unused, FilesRemaining
        /// forever, and a loop "until not StoppedByBudget" never ended; a hostile review).
        /// </summary>
        private bool Leave(DefragSchedule run, DefragCandidate c)
        {
            if (run.NeverFits(c, out TimeSpan needed))
            {
                if (warnedTooLong.Add(c.Path))
                {
                    WriteWarning(needed > MaxDuration
                        ? $"'{c.Path}' needs {Needs(run, c)}, more than the whole -MaxDuration of {Seconds(MaxDuration)}: no run with this budget can defragment it. Give a longer -MaxDuration (or a higher -MaxBytesPerSecond), or defragment it on its own."
                        : $"'{c.Path}' needs {Needs(run, c)}, more than the {Seconds(run.RewritingBudget ?? MaxDuration)} a run with -MaxDuration {Seconds(MaxDuration)} has for rewriting after measuring ({Seconds(run.MeasuredIn ?? TimeSpan.Zero)} this time): no run that measures as much can defragment it, and it is left alone so that the pass can complete. Give a longer -MaxDuration (or a higher -MaxBytesPerSecond), or defragment it on its own.");
                }

                WriteVerbose($"Leaving '{c.Path}': {SizeFormatter.Format(c.BytesToRewrite)} to rewrite does not fit in any run of {Seconds(MaxDuration)} (see the warning).");
                run.TooLongForBudget(c);
                return false;
            }

            WriteVerbose($"Leaving '{c.Path}' for the next run: {SizeFormatter.Format(c.BytesToRewrite)} to rewrite does not fit in the {Seconds(run.TimeLeft ?? TimeSpan.Zero)} left.");
            run.LeaveForNextRun(c);
            return true;
        }

        /// <summary>The files warned about as too long for any run with this budget (once a run, not once a pass).</summary>
        private readonly HashSet<string> warnedTooLong = new(StringComparer.Ordinal);

        /// <summary>"0.9 s", "42 s", or "01:05:00" from a minute on: a time in a message, never rounded down to nothing.</summary>
        private static string Seconds(TimeSpan t) =>
            t < TimeSpan.FromSeconds(10) ? $"{t.TotalSeconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)} s"
            : t < TimeSpan.FromMinutes(1) ? $"{t.TotalSeconds.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)} s"
            : ProgressBar.Clock(t);

        /// <summary>"about 40 s (64.0 MiB to rewrite at 1.60 MiB/s, where the rate comes from)": what a candidate needs, for a warning.</summary>
        private static string Needs(DefragSchedule run, DefragCandidate c)
        {
            run.NeverFits(c, out TimeSpan needed);
            (double rate, string source) = run.RateFor(c)!.Value;
            return $"about {needed.TotalSeconds:F0} s ({SizeFormatter.Format(c.BytesToRewrite)} to rewrite at {SizeFormatter.Format((long)rate)}/s, {source})";
        }

        /// <summary>One candidate's turn, its failure an error record; false when the budget ran out during it.</summary>
        private bool TryCandidate(DefragSchedule run, DefragCandidate c)
        {
            try
            {
                return DefragCandidate(run, c);
            }
            catch (FileOperationException ex)
            {
                run.Summary.FilesFailed++;
                WriteError(ErrorRecords.From(ex));
                return true;
            }
        }

        /// <summary>
        /// How far a scheduled run is, for its bar: with -MaxDuration the share of the budget used (and the
        /// time used of it), otherwise the share of the files to defragment that had their turn.
        /// </summary>
        private (int Percent, string Note) RunProgress(DefragSchedule run)
        {
            if (Bound(nameof(MaxDuration)))
            {
                TimeSpan used = run.Elapsed;
                return ((int)Math.Clamp(used / MaxDuration * 100, 0, 100), $" ({ProgressBar.Clock(used)} of the {ProgressBar.Clock(MaxDuration)} budget used)");
            }

            int done = run.Summary.FilesDefragmented + run.Summary.FilesFailed;
            return (ProgressBar.Percent(done, done + run.Pending), string.Empty);
        }

        /// <summary>One candidate's turn; false when the budget ran out during it.</summary>
        private bool DefragCandidate(DefragSchedule run, DefragCandidate c)
        {
            using Defragmenter? d = run.Reopen(c);
            if (d is null)
            {
                WriteVerbose($"Skipping '{c.Path}': it changed or went since it was measured; the next run measures it again.");
                return true;
            }

            if (d.SkipReason is string reason)
            {
                LeftAlone(c.Path, reason, d.SkipKind, again: false); // measured as worth it in this pass: not warned about yet
                run.Skipped(c, d, reason);
                return true;
            }

            if (!Confirmed(d))
            {
                run.LeaveForNextRun(c); // -WhatIf, or declined: not done, so it is what remains
                declined += WhatIfInEffect ? 0 : 1;
                return true;
            }

            (int percent, string note) = RunProgress(run);
            bars!.StartFile(c.Path, d.BytesToRewrite, runPercent: percent, runNote: note);
            run.StartRewriting();
            var rewriting = System.Diagnostics.Stopwatch.StartNew();
            long done = 0, copied = 0;
            DefragResult result;
            using (CancellationTokenSource cts = run.TokenFor(StopToken))
            {
                try
                {
                    result = d.Run(
                        bytes =>
                        {
                            done = copied = d.WrittenFor(bytes);
                            bars.Report(bytes);
                            run.Throttle(done, cts.Token);
                        },
                        cts.Token);
                    done = result.Skipped ? copied : 0; // a copy made and then not used (changed meanwhile) was written all the same: the throttle counts it
                }
                catch (OperationCanceledException)
                {
                    run.Rewrote(c.FileSystemId, done, rewriting.Elapsed); // the next run knows the rate from its start
                    if (StopToken.IsCancellationRequested)
                    {
                        throw;
                    }

                    WriteVerbose($"The budget ran out while '{c.Path}' was being defragmented: stopped between steps{(d.BytesRewrittenSoFar > 0 ? $", with {SizeFormatter.Format(d.BytesRewrittenSoFar)} of it rewritten" : string.Empty)}; the next run measures it again.");
                    run.StoppedPartway(d);
                    return false;
                }
                catch (FileOperationException)
                {
                    run.Rewrote(c.FileSystemId, done, rewriting.Elapsed);
                    throw;
                }
                finally
                {
                    run.StopRewriting(done);
                    bars.EndFile();
                }
            }

            run.Rewrote(c.FileSystemId, result.Skipped ? copied : result.BytesRewritten, rewriting.Elapsed);
            if (result.Skipped)
            {
                // Nothing was rewritten (no improvement possible, or a writer changed it while it was copied).
                WriteVerbose($"Leaving '{c.Path}' alone: {result.Reason}.");
                if (result.SkipReason == DefragSkipReason.ChangedWhileCopying)
                {
                    run.ChangedDuringTurn(c);
                }
                else
                {
                    run.Skipped(c, d, result.Reason);
                }

                return true;
            }

            if (result.Incomplete)
            {
                run.DoneInPart(c, result);
                WriteVerbose($"'{c.Path}' was defragmented in part: {result.Reason}; the next run measures it again.");
                WriteObject(result);
                return true;
            }

            run.Done(c, d, result);
            WriteVerbose($"'{c.Path}': {result.ExtentsBefore} → {result.ExtentsAfter} extents, {result.FragmentsBefore} → {result.FragmentsAfter} fragments in {result.Duration.TotalSeconds:F2} s.");
            WriteObject(result);
            return true;
        }

        /// <summary>ShouldProcess with what it costs, and (unsharing without -Force) ShouldContinue.</summary>
        private bool Confirmed(Defragmenter d)
        {
            if (!Preferences.ShouldProcess(this, d.Path, Describe(d)))
            {
                return false;
            }

            // This file will be rewritten: what its old extents free counts only after another commit, which the next
            // file's question asks for again where short (a review: -Confirm's later questions said "refused").
            committedForPreview.Remove(d.FileSystemId);

            return d.SharedBytesToUnshare <= 0 || Force.IsPresent || ConfirmSwitchedOff
                || Preferences.ShouldContinue(
                    this,
                    d.Path,
                    $"Rewriting '{d.Path}' stops {SizeFormatter.Format(d.SharedBytesToUnshare)} from being shared with reflink copies or snapshots: that much more space is used ({SizeFormatter.Format(d.AvailableBytes)} is free now). Continue?",
                    "Unshare extents",
                    "-Force (or -Confirm:$false)");
        }

        private void DefragOne(string path, FileLocation? walked = null)
        {
            // Throttled: this object's options in the schedule's small steps, each written back at once.
            DefragOptions options = Bound(nameof(MaxBytesPerSecond)) ? schedule!.For(Options) : Options;
            using Defragmenter d = walked is { } location ? Defragmenter.Prepare(location, options) : Defragmenter.Prepare(path, options);
            if (d.SkipReason is null && Bound(nameof(MinimumFragments)) && d.FragmentsBefore < MinimumFragments)
            {
                string why = $"{d.FragmentsBefore} fragment(s), under -MinimumFragments {MinimumFragments}: left alone";
                WriteVerbose($"Skipping '{path}': {why}.");
                WriteObject(d.Skipped(DefragSkipReason.BelowMinimum, why));
                return;
            }

            if (d.SkipReason is string reason)
            {
                if (WhatIfInEffect)
                {
                    Preferences.ShouldProcess(this, path, "Nothing to defragment (" + reason + ")");
                    return;
                }

                // A small file whose data is all inline is routine in a walked tree, where a warning each was noise (a
                // hostile review: one per tiny file of a home directory); named on its own, it is still said.
                if (d.SkipIsWarning && !(walked is not null && d.SkipKind == DefragSkipReason.InlineOnly))
                {
                    WriteWarning($"Skipping '{path}': it is {reason}.");
                }
                else
                {
                    WriteVerbose($"Skipping '{path}': {reason}.");
                }

                WriteObject(d.Skipped());
                return;
            }

            if (!Confirmed(d))
            {
                return;
            }

            if (Options.CompressionLevel is not null && !levelWarned && !d.CompressionLevelSupported())
            {
                levelWarned = true;
                WriteWarning("This kernel does not accept a compression level for defragmentation (BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL); the data is compressed at the default level.");
            }

            bars!.StartFile(path, d.BytesToRewrite);
            schedule!.StartRewriting();
            DefragResult result;
            try
            {
                result = d.Run(
                    done =>
                    {
                        bars.Report(done);
                        schedule.Throttle(d.WrittenFor(done), StopToken);
                    },
                    StopToken);
            }
            finally
            {
                schedule.StopRewriting();
                bars.EndFile();
            }

            schedule.Done(result);
            WriteVerbose($"'{path}': {result.ExtentsBefore} → {result.ExtentsAfter} extents, {result.FragmentsBefore} → {result.FragmentsAfter} fragments in {result.Duration.TotalSeconds:F2} s.");
            WriteObject(result);
        }


        /// <summary>The filesystems committed once for a preview's free space (<see cref="Defragmenter.ReadSpaceAgain"/>).</summary>
        private readonly HashSet<ulong> committedForPreview = new();

        /// <summary>How a copy's extents reach the file, in a preview's words.</summary>
        private static string Finish(DefragMethod method) => method switch
        {
            DefragMethod.XfsDedupeRange => "remap the file onto it where the bytes are still equal",
            DefragMethod.Ext4MoveExtents => "move its blocks into the file",
            _ => "exchange the extents",
        };

        private string Describe(Defragmenter d)
        {
            if (d.BytesNeeded > d.AvailableBytes)
            {
                d.ReadSpaceAgain(commit: committedForPreview.Add(d.FileSystemId));
            }

            if (d.Method != DefragMethod.BtrfsDefragRange)
            {
                string whole = $"Copy the whole file ({SizeFormatter.Format(d.BytesToRewrite)}) into a new copy with fewer extents and {Finish(d.Method)} ({d.Method}): "
                    + (d.BytesNeeded > d.AvailableBytes
                        ? $"needs {SizeFormatter.Format(d.BytesNeeded)} of free space while it runs, more than the {SizeFormatter.Format(d.AvailableBytes)} free: it would be refused (InsufficientSpace)"
                        : $"{SizeFormatter.Format(d.BytesNeeded)} of free space used while it runs ({SizeFormatter.Format(d.AvailableBytes)} free now)");
                return d.SharedBytesToUnshare > 0
                    ? whole + $"; {SizeFormatter.Format(d.SharedBytesToUnshare)} stops being shared with reflink copies, so about that much more space stays used"
                    : whole;
            }

            // The file's own options (a scheduled run's candidates each keep the piped object's threshold).
            string text = $"Rewrite {SizeFormatter.Format(d.BytesToRewrite)} in extents below {d.ThresholdText}";
            if (d.Options.Compress is DefragCompression c)
            {
                text = $"Rewrite and compress ({c}) {SizeFormatter.Format(d.BytesToRewrite)}";
            }

            if (d.PlanNote is string note)
            {
                text += $" ({note})";
            }

            if (d.SharedBytesSkipped > 0)
            {
                text += $"; {SizeFormatter.Format(d.SharedBytesSkipped)} in small shared extents stays shared";
            }

            text += d.BytesNeeded > d.AvailableBytes
                ? $"; needs up to {SizeFormatter.Format(d.BytesNeeded)} of free space while it runs, more than the {SizeFormatter.Format(d.AvailableBytes)} free: it would be refused (InsufficientSpace)"
                : $"; needs up to {SizeFormatter.Format(d.BytesNeeded)} of free space while it runs ({SizeFormatter.Format(d.AvailableBytes)} free now: the old extents are freed as it goes, except parts still in use)";
            if (d.SharedBytesToUnshare > 0)
            {
                text += $"; {SizeFormatter.Format(d.SharedBytesToUnshare)} stops being shared, so about that much more space stays used (about {SizeFormatter.Format(System.Math.Max(0, d.AvailableBytes - d.SharedBytesToUnshare))} free afterwards)";
            }

            return text;
        }
    }
}
