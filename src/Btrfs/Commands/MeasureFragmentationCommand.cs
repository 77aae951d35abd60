namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Measure-Fragmentation: how fragmented files are, one object per file or a summary.</summary>
    [Cmdlet(VerbsDiagnostic.Measure, "Fragmentation", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Measure-Fragmentation.md")]
    [OutputType(typeof(FragmentationReport), typeof(FragmentationSummary))]
    public sealed class MeasureFragmentationCommand : RecursiveFileCmdletBase
    {
        private const int ProgressId = 0x4D46;
        private FragmentationSummary? summary;
        private ScanProgress? progress;



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
            progress = new ScanProgress(this, "Measure-Fragmentation", ProgressId);
            if (Summary.IsPresent)
            {
                summary = new FragmentationSummary { Threshold = Threshold };
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ThrowIfDirectoryWithoutRecurse(path, false, "measure", "measure every file below it");
                MeasureOne(path);
                return;
            }

            // Count first (a listing only, no file is opened) so the progress has a percentage.
            progress!.StartTree(CountFilesInTree(path));
            ForEachFileInBatches(
                path,
                batch => FragmentationAnalyzer.MeasureAll(batch, Threshold, Environment.ProcessorCount),
                (file, report) =>
                {
                    if (report is not null)
                    {
                        Emit(report);
                    }

                    progress.FileDone(file, report?.Size ?? 0);
                });
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            progress?.Complete();

            if (summary is not null)
            {
                WriteObject(summary);
            }
        }

        private void MeasureOne(string path)
        {
            FragmentationReport? r = null;
            try
            {
                r = FragmentationAnalyzer.Measure(path, Threshold);
                Emit(r);
            }
            finally
            {
                progress!.FileDone(path, r?.Size ?? 0);
            }
        }

        private void Emit(FragmentationReport r)
        {
            if (summary is null)
            {
                WriteObject(r);
            }
            else
            {
                summary.Add(r);
            }
        }
    }
}
