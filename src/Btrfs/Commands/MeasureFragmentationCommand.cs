namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>Measure-Fragmentation: how fragmented files are, one object per file or a summary.</summary>
    [Cmdlet(VerbsDiagnostic.Measure, "Fragmentation", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(FragmentationReport), typeof(FragmentationSummary))]
    public sealed class MeasureFragmentationCommand : FileCmdletBase
    {
        private const int ProgressId = 0x4D46;
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
                if (FileStatus.OfPath(path, followLinks: true) is { IsDirectory: true })
                {
                    throw new FileOperationException(
                        FileErrorKind.IsDirectory,
                        Interop.Libc.EISDIR,
                        "stat",
                        path,
                        $"Cannot measure '{path}': it is a directory. Add -Recurse to measure every file below it.");
                }

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
            ForEachInTree(path, CrossFileSystem.IsPresent, entry =>
            {
                if (entry.Kind == WalkEntryKind.File)
                {
                    MeasureOne(entry.Path);
                }
            });
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
                FragmentationReport r = FragmentationAnalyzer.Measure(path, Threshold);
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
            finally
            {
                files++;
                Report(path);
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
