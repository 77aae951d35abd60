namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>Get-BtrfsExtent: the FIEMAP extent map of files, one object per extent.</summary>
    [Cmdlet(VerbsCommon.Get, "BtrfsExtent", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(FileExtent))]
    public sealed class GetBtrfsExtentCommand : FileCmdletBase
    {
        private const int ProgressActivityId = 0x4254; // stable, non-zero
        private const int ProgressEvery = FiemapReader.DefaultPageExtents;

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

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            using RegularFile file = RegularFile.OpenRead(path);
            WriteVerbose($"Mapping the extents of '{path}' ({file.Size} bytes on {file.FileSystem.DisplayName}).");
            var query = new ExtentQuery
            {
                Offset = Offset,
                Length = MyInvocation.BoundParameters.ContainsKey(nameof(Length)) ? Length : null,
                Sync = Sync.IsPresent,
                IncludeHoles = IncludeHole.IsPresent,
            };

            // Progress goes out once a file has more than one page of extents, with the logical
            // offset reached as the percentage of the file size.
            // Each record is a new object: hosts may keep the ones they were given.
            bool reported = false;
            long count = 0;
            foreach (FileExtent extent in ExtentMap.Read(file, query))
            {
                WriteObject(extent);
                if (++count % ProgressEvery == 0)
                {
                    WriteProgress(new ProgressRecord(ProgressActivityId, "Get-BtrfsExtent", $"{path}: {count} extents")
                    {
                        PercentComplete = Percent(extent.EndOffset, file.Size),
                    });
                    reported = true;
                }
            }

            if (reported)
            {
                WriteProgress(new ProgressRecord(ProgressActivityId, "Get-BtrfsExtent", $"{path}: {count} extents")
                {
                    PercentComplete = 100,
                    RecordType = ProgressRecordType.Completed,
                });
            }
        }

        private static int Percent(long done, long total) =>
            total <= 0 ? 0 : (int)System.Math.Clamp(done * 100.0 / total, 0, 100);
    }
}
