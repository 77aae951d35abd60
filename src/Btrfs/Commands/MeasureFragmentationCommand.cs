namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Management.Automation;
    using System.Threading.Tasks;
    using Btrfs.Core;

    /// <summary>Measure-Fragmentation: how fragmented files are, one object per file or a summary.</summary>
    [Cmdlet(VerbsDiagnostic.Measure, "Fragmentation", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(FragmentationReport), typeof(FragmentationSummary))]
    public sealed class MeasureFragmentationCommand : FileCmdletBase
    {
        private const int ProgressId = 0x4D46;
        private const int Batch = 256;
        private FragmentationSummary? summary;
        private long files;
        private long bytes;
        private long total = -1;
        private int lastPercent = -1;
        private DateTime lastReport;

        /// <summary>For a directory: measure every regular file below it.</summary>
        [Parameter]
        public SwitchParameter Recurse { get; set; }

        /// <summary>With -Recurse: also enter other filesystems and btrfs subvolumes.</summary>
        [Parameter]
        public SwitchParameter CrossFileSystem { get; set; }

        /// <summary>Extents shorter than this count as small (bytes; default 32 MiB, as Invoke-BtrfsDefrag -ExtentThreshold).</summary>
        [Parameter]
        [ValidateRange(4096, long.MaxValue)]
        public long Threshold { get; set; } = FragmentationAnalyzer.DefaultThreshold;

        /// <summary>One object with totals for the whole input instead of one per file.</summary>
        [Parameter]
        public SwitchParameter Summary { get; set; }

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            if (Summary.IsPresent)
            {
                summary = new FragmentationSummary { Threshold = Threshold };
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recurse.IsPresent)
            {
                ThrowIfDirectoryWithoutRecurse(path, false, "measure", "measure every file below it");
                MeasureOne(path);
                return;
            }

            // Count first (a listing only, no file is opened) so the progress has a percentage.
            total = 0;
            foreach (WalkEntry e in TreeWalker.Walk(path, CrossFileSystem.IsPresent))
            {
                total += e.Kind == WalkEntryKind.File ? 1 : 0;
            }

            files = 0;
            var batch = new List<string>(Batch);
            Task<MeasureOutcome[]>? inflight = null;
            try
            {
                ForEachInTree(path, CrossFileSystem.IsPresent, entry =>
                {
                    if (entry.Kind == WalkEntryKind.File)
                    {
                        batch.Add(entry.Path);
                        if (batch.Count == Batch)
                        {
                            inflight = Submit(batch, inflight);
                            batch = new List<string>(Batch);
                        }
                    }
                });
                inflight = Submit(batch, inflight);
                Emit(inflight);
                inflight = null;
            }
            finally
            {
                inflight?.Wait(); // stopped or failed: let the readers finish before the command ends
            }
        }

        /// <summary>
        /// Files of a tree are measured a batch at a time on every core; while one batch is measured
        /// the previous one is written out, in walk order, so the kernel's work overlaps the pipeline's.
        /// </summary>
        private Task<MeasureOutcome[]> Submit(List<string> batch, Task<MeasureOutcome[]>? previous)
        {
            Task<MeasureOutcome[]> next = Task.Run(() => FragmentationAnalyzer.MeasureAll(batch, Threshold, Environment.ProcessorCount, fromWalk: true));
            Emit(previous);
            return next;
        }

        private void Emit(Task<MeasureOutcome[]>? measured)
        {
            if (measured is null)
            {
                return;
            }

            foreach (MeasureOutcome o in measured.GetAwaiter().GetResult())
            {
                StopToken.ThrowIfCancellationRequested();
                if (o.Report is FragmentationReport r)
                {
                    Emit(r);
                }
                else
                {
                    WriteError(ErrorRecords.From(o.Error!));
                }

                files++;
                Report(o.Path);
            }
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            if (lastPercent >= 0 || lastReport != default)
            {
                WriteProgress(new ProgressRecord(ProgressId, "Measure-Fragmentation", $"{files} file(s), {SizeFormatter.Format(bytes)}") { PercentComplete = 100, RecordType = ProgressRecordType.Completed });
            }

            if (summary is not null)
            {
                WriteObject(summary);
            }
        }

        private void MeasureOne(string path)
        {
            try
            {
                Emit(FragmentationAnalyzer.Measure(path, Threshold));
            }
            finally
            {
                files++;
                Report(path);
            }
        }

        private void Emit(FragmentationReport r)
        {
            bytes += r.Size;
            if (summary is null)
            {
                WriteObject(r);
            }
            else
            {
                summary.Add(r);
            }
        }

        private void Report(string path)
        {
            // With a known total: when the percentage moves; otherwise at most four times a second.
            int percent = total > 0 ? (int)Math.Min(100, files * 100 / total) : -1;
            DateTime now = DateTime.UtcNow;
            if (total > 0 ? percent == lastPercent : (now - lastReport).TotalMilliseconds < 250)
            {
                return;
            }

            lastPercent = percent;
            lastReport = now;
            WriteProgress(new ProgressRecord(ProgressId, "Measure-Fragmentation", $"{files} file(s), {SizeFormatter.Format(bytes)} scanned: {path}") { PercentComplete = percent });
        }
    }
}
