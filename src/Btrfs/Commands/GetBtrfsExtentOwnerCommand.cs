namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Get-BtrfsExtentOwner: every file, in every subvolume and snapshot, that references the data
    /// extents of a file range (or one btrfs logical address): one object per file with how many of the
    /// extents it uses and their size, or with -Detailed one per reference. btrfs only, root only.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BtrfsExtentOwner", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Get-BtrfsExtentOwner.md")]
    [OutputType(typeof(BtrfsOwningFile), typeof(BtrfsExtentOwner))]
    public sealed class GetBtrfsExtentOwnerCommand : FileCmdletBase, IDisposable
    {
        private const int ProgressId = 0x424F;
        private readonly Dictionary<ulong, (OpenFile Anchor, ExtentOwners Owners)> fileSystems = new();
        private BtrfsOwningFile.Grouping? pending;
        private string? pendingPath;
        private readonly HashSet<ulong> answered = new(); // the extents of the pending file answered for already

        /// <summary>Offset in the file of the first byte whose extent is looked up (default 0). Binds LogicalOffset of piped extents.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("LogicalOffset")]
        [ValidateRange(0, long.MaxValue)]
        public long Offset { get; set; }

        /// <summary>
        /// Bytes from Offset whose extents are looked up (default: the whole file, or with -Offset the one extent
        /// there). Binds Length of piped extents; the Length of anything else piped (a string's characters, a
        /// FileInfo's size) says nothing of a range and is not used.
        /// </summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateRange(0, long.MaxValue)]
        public long Length { get; set; }

        /// <summary>A btrfs logical address (DiskAddress of Get-BtrfsExtent -Exact); the path is then any file or directory on the filesystem.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long DiskAddress { get; set; }

        /// <summary>One object per reference (extent, subvolume, inode, offset, path) instead of one per owning file.</summary>
        [Parameter]
        public SwitchParameter Detailed { get; set; }

        /// <summary>
        /// Each piped extent asks about its own range of the file, so a file named again is looked up again;
        /// without -Detailed the answers for consecutive inputs of one file are one object per owning file.
        /// </summary>
        protected override bool EachFileOncePerPipeline => false;

        /// <inheritdoc/>
        private protected override bool EveryInputNeedsRoot => true;

        /// <summary>Parameters given on the command line (the rest of what is bound in a record came from the piped object).</summary>
        private HashSet<string> given = new();

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            given = new HashSet<string>(MyInvocation.BoundParameters.Keys, StringComparer.OrdinalIgnoreCase);
            ThrowIfAddressWithRange(given.Contains(nameof(Length)));
            base.BeginProcessing();
        }

        /// <summary>
        /// -Length is a range only when given, or bound from a piped object that also bound -Offset (an extent: its
        /// LogicalOffset and Length). A piped string's Length is its number of characters, a FileInfo's its size:
        /// taken as a range, a path piped as text looked up only as many bytes as its name has characters
        /// (found by a hostile review), and an empty file's Length 0 failed binding.
        /// </summary>
        private bool LengthIsARange =>
            MyInvocation.BoundParameters.ContainsKey(nameof(Length))
            && (given.Contains(nameof(Length)) || (MyInvocation.BoundParameters.ContainsKey(nameof(Offset)) && !given.Contains(nameof(Offset))));

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            // Piped extents bind -Offset (their LogicalOffset) only now (before: their ranges were silently ignored, and
            // the one extent's owners written once per piped object). A piped FileInfo binds only -Length (its size),
            // which says nothing of where: the address is answered, as for any file that names the filesystem.
            ThrowIfAddressWithRange(false);
            if (given.Contains(nameof(Length)) && Length == 0)
            {
                // Checked here, not when binding (0 is a piped FileInfo's Length) nor at the start (a script block given
                // for -Length has its value only now).
                WriteError(new ErrorRecord(new PSArgumentException("-Length must be at least 1 byte (leave it out for the whole file)."), "LengthOutOfRange", ErrorCategory.InvalidArgument, Length));
                return;
            }

            base.ProcessRecord();
        }

        private void ThrowIfAddressWithRange(bool length)
        {
            bool byAddress = MyInvocation.BoundParameters.ContainsKey(nameof(DiskAddress));
            bool byRange = MyInvocation.BoundParameters.ContainsKey(nameof(Offset)) || length;
            if (byAddress && byRange)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("DiskAddressWithRange", "-DiskAddress names one extent by its btrfs address; -Offset and -Length name extents by where they are in a file (as piped extents do). Use one way."));
            }
        }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (MyInvocation.BoundParameters.ContainsKey(nameof(DiskAddress)))
            {
                using OpenFile anchor = OpenFile.Open(path, OpenOptions.AllowDirectory);
                var one = new BtrfsOwningFile.Grouping();
                ExtentOwners byAddress = OwnersFor(anchor);
                ExtentOwnerList list = byAddress.Find((ulong)DiskAddress, StopToken);
                (ulong start, long size) = byAddress.ExtentAt((ulong)DiskAddress);
                if (size > 0 && start != (ulong)DiskAddress)
                {
                    list = byAddress.Find(start, StopToken); // named by the extent's own address, as a lookup by file names it
                }

                Flush();
                Write(list, one, size);
                Flush(one);
                return;
            }

            using OpenFile file = OpenFile.OpenRead(path);
            ExtentOwners owners = OwnersFor(file);
            // Neither -Offset nor -Length: the whole file (as a FileInfo piped in, whose Length binds its size);
            // only -Offset: the one item there.
            long length = LengthIsARange ? Math.Max(1, Length)
                : MyInvocation.BoundParameters.ContainsKey(nameof(Offset)) ? 1
                : Math.Max(1, file.Size);
            if (PipedHole(file, length))
            {
                // A hole piped from Get-BtrfsExtent -IncludeHole has no extent, so nothing owns it: said, not an error (before:
                // one ExtentNotFound per hole of the file).
                WriteVerbose($"'{path}': bytes {Offset} to {Offset + length - 1} are a hole (no data extent): nothing owns them.");
                return;
            }

            var bar = new ProgressBar(this, ProgressId, "Get-BtrfsExtentOwner", notBefore: TimeSpan.FromSeconds(1));
            long extents = 0;
            // Consecutive inputs of one file (its extents, piped from Get-BtrfsExtent) are one grouping: one
            // object per owning file for all of them, written when the next file comes or at the end.
            if (pendingPath != path)
            {
                Flush();
                pending = new BtrfsOwningFile.Grouping();
                pendingPath = path;
            }

            BtrfsOwningFile.Grouping grouping = pending!;
            // Two pieces of one extent piped in (a bookend's, an extent cloned within the file) ask about the same extent:
            // its references are told once (before: once per piece, so References multiplied), and looked up once.
            foreach ((ExtentOwnerList list, long reached, long extentBytes) in owners.FindInRangeWithSizes(file, Offset, length, StopToken, answered))
            {
                StopToken.ThrowIfCancellationRequested();
                Write(list, grouping, extentBytes);

                extents++;
                bar.Show($"{path}: {extents} extent(s)", ProgressBar.Percent(Math.Min(length, reached - Offset), length));
            }

            bar.Complete($"{path}: {extents} extent(s)");
        }

        /// <summary>
        /// The range was piped in (an extent's LogicalOffset and Length) and the file has no extent there, not even a
        /// preallocated or not yet allocated one (FIEMAP; SEEK_DATA would call a preallocated extent a hole): a hole.
        /// </summary>
        private bool PipedHole(OpenFile file, long length) =>
            LengthIsARange && !given.Contains(nameof(Offset)) && !given.Contains(nameof(Length))
            && Offset < file.Size
            && !Fiemap.Read(file, (ulong)Offset, (ulong)Math.Min(length, file.Size - Offset), sync: false, pageExtents: 1).Any();

        /// <inheritdoc/>
        protected override void EndProcessing() => Flush();

        /// <inheritdoc/>
        public void Dispose()
        {
            foreach ((OpenFile anchor, ExtentOwners owners) in fileSystems.Values)
            {
                owners.Dispose();
                anchor.Dispose();
            }

            fileSystems.Clear();
        }

        /// <summary>One resolver per mount for the whole command, so subvolume paths are looked up once and each warning is given once.</summary>
        private ExtentOwners OwnersFor(OpenFile file)
        {
            BtrfsOnly.Require(file, "list the owners of the extents of");
            ulong key = file.Status.MountId;
            if (!fileSystems.TryGetValue(key, out var entry))
            {
                OpenFile anchor = OpenFile.Open(file.Path, OpenOptions.AllowDirectory);
                try
                {
                    entry = (anchor, new ExtentOwners(anchor));
                }
                catch
                {
                    anchor.Dispose();
                    throw;
                }

                fileSystems.Add(key, entry);
            }

            return entry.Owners;
        }

        /// <summary>With -Detailed every reference as it comes; otherwise folded into one record per owning file, written by <see cref="Flush"/>.</summary>
        private void Write(ExtentOwnerList list, BtrfsOwningFile.Grouping grouping, long extentBytes)
        {
            foreach (string warning in list.Warnings)
            {
                WriteWarning(warning);
            }

            if (!Detailed.IsPresent)
            {
                grouping.Add(list, extentBytes);
                return;
            }

            foreach (BtrfsExtentOwner owner in list.Owners)
            {
                WriteObject(owner);
            }
        }

        private void Flush()
        {
            if (pending is not null)
            {
                Flush(pending);
            }

            pending = null;
            pendingPath = null;
            answered.Clear();
        }

        private void Flush(BtrfsOwningFile.Grouping grouping)
        {
            foreach (BtrfsOwningFile file in grouping.Files)
            {
                WriteObject(file);
            }
        }
    }
}
