namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Measure-BtrfsUsage: compsize's space accounting (disk, uncompressed, referenced, per
    /// compression type) per file, for the whole input (-Summary), or as compsize's table
    /// (-ByCompression), with the bookend waste compsize does not show. btrfs only, root only.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Measure, "BtrfsUsage", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Measure-BtrfsUsage.md")]
    [OutputType(typeof(BtrfsFileUsage), typeof(BtrfsUsageSummary), typeof(BtrfsUsageRow))]
    public sealed class MeasureBtrfsUsageCommand : RecursiveFileCmdletBase
    {
        private const int ProgressId = 0x4255;
        private BtrfsUsageTotals? totals;

        /// <summary>Each partly used extent's other references, read once for the whole run.</summary>
        private readonly OtherReferences known = new();
        private ScanProgress? progress;

        /// <inheritdoc/>
        private protected override bool EveryInputNeedsRoot => true;

        /// <summary>One object for the whole input, every distinct extent counted once (compsize's totals).</summary>
        [Parameter]
        public SwitchParameter Summary { get; set; }

        /// <summary>compsize's table: a Total row and one row per compression type (and prealloc).</summary>
        [Parameter]
        public SwitchParameter ByCompression { get; set; }

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            if (Summary.IsPresent && ByCompression.IsPresent)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("SummaryWithByCompression", "-Summary gives one object with the totals and -ByCompression the same totals as compsize's table rows. Use one of them."));
            }

            progress = new ScanProgress(this, "Measure-BtrfsUsage", ProgressId);
            if (Summary.IsPresent || ByCompression.IsPresent)
            {
                totals = new BtrfsUsageTotals();
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ThrowIfDirectoryWithoutRecurse(path, false, "measure", "measure every file below it");
                long size = 0;
                try
                {
                    using OpenFile file = OpenFile.OpenRead(path);
                    size = file.Size;
                    if (totals is null)
                    {
                        WriteObject(BtrfsUsageMeter.Measure(file, known));
                    }
                    else
                    {
                        totals.Add(file, known);
                    }
                }
                finally
                {
                    progress!.FileDone(path, size);
                }

                return;
            }

            progress!.StartTree(CountFilesInTree(path));
            if (totals is null)
            {
                ForEachFileInBatches(
                    path,
                    batch => BtrfsUsageMeter.MeasureAll(batch, Environment.ProcessorCount, known),
                    (file, usage) =>
                    {
                        if (usage is not null)
                        {
                            WriteObject(usage);
                        }

                        progress.FileDone(file, usage?.Size ?? 0);
                    });
            }
            else
            {
                ForEachFileInBatches(
                    path,
                    batch => BtrfsUsageMeter.CountAll(batch, Environment.ProcessorCount, known),
                    (file, counted) =>
                    {
                        if (counted is not null)
                        {
                            totals.Add(counted);
                        }

                        progress.FileDone(file, counted?.FileBytes ?? 0);
                    });
            }
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            progress?.Complete();
            if (RefusedEveryInput)
            {
                return; // no totals: nothing could be measured, and 0 would read as a measured figure
            }

            // Nothing measured (no file at all, or every one failed: the errors said why) still gives the totals, of 0
            // files, as Measure-Fragmentation -Summary does: a script reads 0 from them, not $null.
            if (totals is null)
            {
                return;
            }

            BtrfsUsageSummary summary = totals.ToSummary();
            if (ByCompression.IsPresent)
            {
                foreach (BtrfsUsageRow row in summary.ToRows())
                {
                    WriteObject(row);
                }
            }
            else
            {
                WriteObject(summary);
            }
        }
    }
}
