namespace Btrfs.Commands
{
    using System;
    using System.Globalization;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Find-BtrfsDuplicate: ranges of files that hold the same bytes (whole blocks, adjacent ones merged),
    /// largest savings first, ready to pipe into Invoke-BtrfsDedupe.
    /// </summary>
    [Cmdlet(VerbsCommon.Find, "BtrfsDuplicate", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Find-BtrfsDuplicate.md")]
    [OutputType(typeof(BtrfsDuplicateGroup))]
    public sealed class FindBtrfsDuplicateCommand : RecursiveFileCmdletBase
    {
        private const int ProgressId = 0x4257;
        private DuplicateFinder? finder;

        /// <summary>The unit compared: a multiple of 4 KiB (default 128 KiB). Smaller finds more, costs more memory and dedupe calls.</summary>
        [Parameter]
        [ValidateRange(4096, 8 << 20)]
        public int BlockSize { get; set; } = 128 * 1024;

        /// <summary>Files smaller than this are not looked at (at least one block).</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long MinimumSize { get; set; }

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            if (BlockSize % 4096 != 0)
            {
                ThrowTerminatingError(new ErrorRecord(new PSArgumentException("-BlockSize must be a multiple of 4096 bytes (4 KiB)."), "BlockSizeNotAligned", ErrorCategory.InvalidArgument, BlockSize));
            }

            finder = new DuplicateFinder(BlockSize, MinimumSize);
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ThrowIfDirectoryWithoutRecurse(path, false, "search", "search every file below it");
                finder!.Add(path);
                return;
            }

            ForEachInTree(path, entry =>
            {
                if (entry.Kind == WalkEntryKind.File)
                {
                    finder!.Add(entry.Path);
                }
            });
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            if (finder is null || finder.Count == 0)
            {
                return;
            }

            var bar = new ProgressBar(this, ProgressId, "Find-BtrfsDuplicate", notBefore: TimeSpan.FromSeconds(1));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                var groups = finder.Find(
                    StopToken,
                    p =>
                    {
                        double rate = p.BytesRead / Math.Max(0.001, clock.Elapsed.TotalSeconds);
                        string eta = rate > 0 && p.BytesTotal > p.BytesRead ? TimeSpan.FromSeconds((p.BytesTotal - p.BytesRead) / rate).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "00:00:00";
                        bar.Show(
                            $"Read {SizeFormatter.Format(p.BytesRead)} of at most {SizeFormatter.Format(p.BytesTotal)} ({SizeFormatter.Format((long)rate)}/s, {p.FilesDone} of {p.Files} files, about {eta} left)",
                            Math.Min(99, ProgressBar.Percent(p.BytesRead, p.BytesTotal)));
                    },
                    ex => WriteError(ErrorRecords.From(ex)));
                bar.Complete("Done");
                foreach (BtrfsDuplicateGroup g in groups)
                {
                    WriteObject(g);
                }
            }
            catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
            {
                // Ctrl+C: nothing was changed.
            }
            finally
            {
                bar.Complete("Done");
            }
        }
    }
}
