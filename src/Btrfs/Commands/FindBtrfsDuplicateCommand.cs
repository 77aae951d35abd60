namespace Btrfs.Commands
{
    using System;
    using System.Globalization;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Find-BtrfsDuplicate: ranges of files that hold the same bytes (whole blocks, adjacent ones merged),
    /// largest first (by the bytes not shared yet), ready to pipe into Invoke-BtrfsDedupe.
    /// </summary>
    [Cmdlet(VerbsCommon.Find, "BtrfsDuplicate", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Find-BtrfsDuplicate.md")]
    [OutputType(typeof(BtrfsDuplicateGroup))]
    public sealed class FindBtrfsDuplicateCommand : RecursiveFileCmdletBase, IDisposable
    {
        private const int ProgressId = 0x4257;
        private DuplicateFinder? finder;
        private HashFile? hashFile;

        /// <summary>The unit compared: a multiple of 4 KiB (default 128 KiB). Smaller finds more, costs more memory and dedupe calls.</summary>
        [Parameter]
        [ValidateRange(4096, DuplicateFinder.MaxBlockSize)]
        public int BlockSize { get; set; } = 128 * 1024;

        /// <summary>Files smaller than this are not looked at (at least one block).</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long MinimumSize { get; set; }

        /// <summary>
        /// A SQLite database (created when missing) that keeps every file's block hashes: a later search
        /// with the same file does not read files that did not change (inode, size, modification and change times).
        /// </summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? HashFile { get; set; }

        /// <inheritdoc/>
        public void Dispose()
        {
            finder?.Dispose(); // the scan stopped before the hash file it writes is closed
            hashFile?.Dispose();
        }

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            if (BlockSize % 4096 != 0)
            {
                ThrowTerminatingError(new ErrorRecord(new PSArgumentException("-BlockSize must be a multiple of 4096 bytes (4 KiB)."), "BlockSizeNotAligned", ErrorCategory.InvalidArgument, BlockSize));
            }

            if (HashFile is not null)
            {
                if (PathBinding.UnresolvedFileSystemPath(this, HashFile, out string path) is { } notAFile)
                {
                    ThrowTerminatingError(notAFile);
                }

                try
                {
                    hashFile = Core.HashFile.Open(path);
                }
                catch (FileOperationException ex)
                {
                    ThrowTerminatingError(ErrorRecords.From(ex));
                }
            }

            // Files are read as the walk finds them (see DuplicateFinder.StartScanning), not after it.
            finder = new DuplicateFinder(BlockSize, MinimumSize, hashFile);
            finder.StartScanning(StopToken);
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
                    // Relative to the walked directory: small files are not even opened.
                    _ = entry.Location is FileLocation at ? finder!.Add(at) : finder!.Add(entry.Path);
                }
            });
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            if (finder is null || finder.Count == 0)
            {
                finder?.Dispose();
                return;
            }

            // The files the scan could not read are told here, after the walk's own errors and in the order the
            // files were found (the scan ran during the walk, but when it got to each file must not change what
            // a run says, nor in which order).
            var bar = new ProgressBar(this, ProgressId, "Find-BtrfsDuplicate", notBefore: TimeSpan.FromSeconds(1));
            try
            {
                var groups = finder.Find(
                    StopToken,
                    p =>
                    {
                        // The share done is of all the data, whichever way each file's is had (read, from
                        // btrfs's checksums, from the hash file), and so is the time left; the rate is the reading's.
                        // Both are per second the scan was busy (it began while the walk went on, and waited for it).
                        double seconds = Math.Max(0.001, p.Busy.TotalSeconds);
                        double rate = p.BytesRead / seconds, pace = p.DataDone / seconds;
                        string eta = pace > 0 && p.Data > p.DataDone ? ProgressBar.Clock(TimeSpan.FromSeconds(Math.Min((p.Data - p.DataDone) / pace, TimeSpan.MaxValue.TotalSeconds / 2))) : "--:--:--";
                        bar.Show(
                            $"{SizeFormatter.Format(p.DataDone)} of {SizeFormatter.Format(p.Data)} searched, {SizeFormatter.Format(p.BytesRead)} of it read ({SizeFormatter.Format((long)rate)}/s); {p.FilesDone} of {p.Files} files, about {eta} left",
                            Math.Min(99, ProgressBar.Percent(p.DataDone, p.Data)));
                    },
                    ex => WriteError(ErrorRecords.From(ex)));
                bar.Complete("Done");
                WriteVerbose(string.Format(
                    CultureInfo.InvariantCulture,
                    "Read {0} bytes of {1} files; {2} files unchanged since the hash file recorded them (not read); {7} bytes fingerprinted from btrfs's data checksums (not read). Reading and hashing took {3:F2} s, grouping {4:F2} s, what each group frees {5:F2} s{6}.",
                    finder.BytesRead,
                    finder.FilesRead,
                    finder.FilesFromHashFile,
                    finder.Times.Scan.TotalSeconds,
                    finder.Times.Group.TotalSeconds,
                    finder.Times.Credit.TotalSeconds,
                    finder.Spilled ? "; the index outgrew its memory budget and was sorted on disk" : string.Empty,
                    finder.BytesFromChecksums));
                if (hashFile?.Full is FileOperationException full)
                {
                    WriteWarning($"{full.Message.TrimEnd('.')}. The search went on without recording: {hashFile.NotStored} file(s) read after that are not in the hash file and are read again next time.");
                }

                if (hashFile is not null && hashFile.TooLarge > 0)
                {
                    WriteWarning($"{hashFile.TooLarge} file(s) hold more than {Btrfs.Core.HashFile.MaxBlocksPerRow} blocks of data of -BlockSize, more than one row of the hash file can hold: they are not recorded, and are read again next time. A larger -BlockSize makes fewer blocks.");
                }

                foreach (BtrfsDuplicateGroup g in groups)
                {
                    WriteObject(g);
                }
            }
            catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
            {
                // Ctrl+C: nothing was changed; the hash file keeps every file hashed so far (each committed when hashed).
            }
            catch (FileOperationException ex) when (ex.Operation == "sqlite")
            {
                ThrowTerminatingError(ErrorRecords.From(ex));
            }
            finally
            {
                bar.Complete("Done");
                finder.Dispose();
                hashFile?.Dispose();
                hashFile = null;
            }
        }
    }
}
