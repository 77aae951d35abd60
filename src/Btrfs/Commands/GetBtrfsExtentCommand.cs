namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Get-BtrfsExtent: the FIEMAP extent map of files, one object per extent; with -Exact the btrfs
    /// EXTENT_DATA items themselves, one object per item.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BtrfsExtent", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Get-BtrfsExtent.md")]
    [OutputType(typeof(FileExtent), typeof(BtrfsExtentItem))]
    public sealed class GetBtrfsExtentCommand : RecursiveFileCmdletBase
    {
        private const int ProgressActivityId = 0x4254; // stable, non-zero
        private const int ProgressEvery = Fiemap.DefaultPageExtents;

        /// <summary>Flush delayed allocation before mapping (FIEMAP_FLAG_SYNC), as filefrag -s.</summary>
        [Parameter]
        public SwitchParameter Sync { get; set; }

        /// <summary>First byte of the range to map.</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long Offset { get; set; }

        /// <summary>Number of bytes to map from Offset; default: to the end of the file.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long Length { get; set; }

        /// <summary>Also emit hole records (IsHole) for gaps between extents and after the last one up to the file size.</summary>
        [Parameter]
        public SwitchParameter IncludeHole { get; set; }

        /// <summary>btrfs only, as root: the file's EXTENT_DATA items from its subvolume tree (BtrfsExtentItem), unmerged.</summary>
        [Parameter]
        public SwitchParameter Exact { get; set; }

        /// <inheritdoc/>
        private protected override bool EveryInputNeedsRoot => Exact.IsPresent;

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            if (Exact.IsPresent && IncludeHole.IsPresent)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("ExactWithIncludeHole", "-IncludeHole adds hole records to the FIEMAP view; -Exact shows the items as stored, where a hole is either absent (no-holes filesystems) or an item with DiskAddress 0. Use one of them."));
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                ThrowIfDirectoryWithoutRecurse(path, false, "map the extents of", "map every file below it");
                using OpenFile file = OpenFile.OpenRead(path);
                MapOne(file);
                return;
            }

            ForEachInTree(path, entry =>
            {
                if (entry.Kind == WalkEntryKind.File)
                {
                    using OpenFile file = entry.Location is { } at ? OpenFile.Open(at, OpenOptions.KnownRegular | OpenOptions.NoFollow) : OpenFile.OpenRead(entry.Path);
                    MapOne(file);
                }
            });
        }

        private void MapOne(OpenFile file)
        {
            string path = file.Path;
            if (Exact.IsPresent)
            {
                WriteItems(file);
                return;
            }

            WriteVerbose($"Mapping the extents of '{path}' ({file.Size} bytes on {file.FileSystem.DisplayName}).");
            var query = new ExtentQuery
            {
                Offset = Offset,
                Length = MyInvocation.BoundParameters.ContainsKey(nameof(Length)) ? Length : null,
                Sync = Sync.IsPresent,
                IncludeHoles = IncludeHole.IsPresent,
            };

            WriteAll(path, file.Size, "extents", ExtentMap.Read(file, query), e => e, e => e.EndOffset);
        }

        private void WriteItems(OpenFile file)
        {
            BtrfsOnly.Require(file, "read the exact extent items of", "-Exact is btrfs-only; without it Get-BtrfsExtent shows the FIEMAP extents of a file on any filesystem.");
            if (Sync.IsPresent)
            {
                file.Flush();
            }

            WriteVerbose($"Reading the EXTENT_DATA items of '{file.Path}' ({file.Size} bytes).");
            long? length = MyInvocation.BoundParameters.ContainsKey(nameof(Length)) ? Length : null;
            WriteAll(
                file.Path,
                file.Size,
                "items",
                BtrfsFileExtents.Overlapping(file, Offset, length),
                i => new BtrfsExtentItem(file.Path, i.Index, i.Item),
                i => i.Item.FileEnd);
        }

        /// <summary>
        /// Writes each record as it is read (a new object each: hosts may keep the ones they were
        /// given). Progress goes out once a file has more than one page of records, with the logical
        /// offset reached as the percentage of the file size.
        /// </summary>
        private void WriteAll<T>(string path, long size, string unit, System.Collections.Generic.IEnumerable<T> records, System.Func<T, object> toOutput, System.Func<T, long> endOffset)
        {
            var bar = new ProgressBar(this, ProgressActivityId, "Get-BtrfsExtent");
            long count = 0;
            foreach (T record in records)
            {
                WriteObject(toOutput(record));
                if (++count % ProgressEvery == 0)
                {
                    bar.Show($"{path}: {count} {unit}", ProgressBar.Percent(endOffset(record), size));
                }
            }

            bar.Complete($"{path}: {count} {unit}");
        }
    }
}
