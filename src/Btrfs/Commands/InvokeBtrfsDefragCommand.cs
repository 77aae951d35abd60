namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag: defragments files on btrfs (ranges rewritten in place), xfs and ext4 (a
    /// new copy's extents exchanged in whole, the xfs_fsr way), leaving shared extents shared unless asked.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "BtrfsDefrag", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.Pages + "Invoke-BtrfsDefrag.md")]
    [OutputType(typeof(DefragResult))]
    public sealed class InvokeBtrfsDefragCommand : RecursiveFileCmdletBase
    {
        private ProgressBars? bars;
        private bool levelWarned;



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

            bars = new ProgressBars(this, "Invoke-BtrfsDefrag", 0x4446);
        }

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
            base.ProcessRecord();
        }

        /// <inheritdoc/>
        protected override void EndProcessing() => bars?.Complete();

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ThrowIfDirectoryWithoutRecurse(path, false, "defragment", "defragment every file below it");
                DefragOne(path);
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

        private void DefragOne(string path, FileLocation? walked = null)
        {
            using Defragmenter d = walked is { } location ? Defragmenter.Prepare(location, Options) : Defragmenter.Prepare(path, Options);
            if (d.SkipReason is string reason)
            {
                if (WhatIfInEffect)
                {
                    ShouldProcess(path, "Nothing to defragment (" + reason + ")");
                    return;
                }

                if (d.SkipIsWarning)
                {
                    WriteWarning($"Skipping '{path}': it is {reason}.");
                }
                else
                {
                    WriteVerbose($"Skipping '{path}': {reason}.");
                }

                WriteObject(d.Skipped(reason));
                return;
            }

            if (!ShouldProcess(path, Describe(d)))
            {
                return;
            }

            if (d.SharedBytesToUnshare > 0 && !Force.IsPresent && !ConfirmSwitchedOff
                && !ShouldContinue(
                    $"Rewriting '{path}' stops {SizeFormatter.Format(d.SharedBytesToUnshare)} from being shared with reflink copies or snapshots: that much more space is used ({SizeFormatter.Format(d.AvailableBytes)} is free now). Continue?",
                    "Unshare extents"))
            {
                return;
            }

            if (Options.CompressionLevel is not null && !levelWarned && !d.CompressionLevelSupported())
            {
                levelWarned = true;
                WriteWarning("This kernel does not accept a compression level for defragmentation (BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL); the data is compressed at the default level.");
            }

            bars!.StartFile(path, d.BytesToRewrite);
            DefragResult result;
            try
            {
                result = d.Run(bars.Report, StopToken);
            }
            finally
            {
                bars.EndFile();
            }

            WriteVerbose($"'{path}': {result.ExtentsBefore} → {result.ExtentsAfter} extents, {result.FragmentsBefore} → {result.FragmentsAfter} fragments in {result.Duration.TotalSeconds:F2} s.");
            WriteObject(result);
        }


        private string Describe(Defragmenter d)
        {
            if (d.Method != DefragMethod.BtrfsDefragRange)
            {
                string whole = $"Copy the whole file ({SizeFormatter.Format(d.BytesToRewrite)}) into a new copy with fewer extents and exchange the extents ({d.Method}): {SizeFormatter.Format(d.BytesNeeded)} of free space used while it runs ({SizeFormatter.Format(d.AvailableBytes)} free now)";
                return d.SharedBytesToUnshare > 0
                    ? whole + $"; {SizeFormatter.Format(d.SharedBytesToUnshare)} stops being shared with reflink copies, so about that much more space stays used"
                    : whole;
            }

            string text = $"Rewrite {SizeFormatter.Format(d.BytesToRewrite)} in extents below {SizeFormatter.Format(Options.ExtentThreshold)}";
            if (Options.Compress is DefragCompression c)
            {
                text = $"Rewrite and compress ({c}) {SizeFormatter.Format(d.BytesToRewrite)}";
            }

            if (d.SharedBytesSkipped > 0)
            {
                text += $"; {SizeFormatter.Format(d.SharedBytesSkipped)} in small shared extents stays shared";
            }

            if (d.SharedBytesToUnshare > 0)
            {
                text += $"; {SizeFormatter.Format(d.SharedBytesToUnshare)} stops being shared, so about that much more space is used ({SizeFormatter.Format(d.AvailableBytes)} free now, about {SizeFormatter.Format(System.Math.Max(0, d.AvailableBytes - d.SharedBytesToUnshare))} afterwards)";
            }
            else
            {
                text += $"; no new space needed ({SizeFormatter.Format(d.AvailableBytes)} free)";
            }

            return text;
        }
    }
}
