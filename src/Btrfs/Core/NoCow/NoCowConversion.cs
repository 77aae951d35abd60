namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>What a conversion may do beyond the safe default.</summary>
    public sealed record NoCowConversionOptions
    {
        /// <summary>Convert a file with more than one hard link (only this name gets the new file).</summary>
        public bool AllowHardLinks { get; init; }

        /// <summary>Where no write lease can prove that nobody else has the file open, rely on the /proc scan alone.</summary>
        public bool AssumeNotInUse { get; init; }

        /// <summary>To NOCOW: drop the file's compression (chattr +c or the btrfs.compression property) instead of refusing.</summary>
        public bool DropCompression { get; init; }

        /// <summary>Make the file's name a link of this converted file (another name of it, converted earlier in the run) instead of copying it.</summary>
        internal ConvertedLink? LinkTo { get; init; }

        /// <summary>Tests only: use a hidden named temporary file instead of O_TMPFILE.</summary>
        internal bool ForceNamedTemporary { get; init; }

        /// <summary>Tests only: called with the lease held, just before the names are exchanged.</summary>
        internal Action? BeforeSwap { get; init; }

        /// <summary>Tests only: called during the exchange of names.</summary>
        internal ExchangeHooks? Exchange { get; init; }
    }

    /// <summary>
    /// ConvertTo-NoCow / ConvertFrom-NoCow's Core: a checked plan for one file (everything that
    /// would refuse the conversion is found before anything is written), then <see cref="Run"/>,
    /// which rewrites the data into a new inode with (or without) NOCOW through <see cref="SafeRewrite"/>.
    /// </summary>
    public sealed class NoCowConversion : IDisposable
    {
        private readonly OpenFile file;
        private readonly NoCowConversionOptions options;
        private readonly List<string> warnings = new();
        private InodeFlags originalFlags; // as read by Check

        private NoCowConversion(OpenFile file, bool toNoCow, NoCowConversionOptions options)
        {
            this.file = file;
            this.options = options;
            ToNoCow = toNoCow;
        }

        /// <summary>The file.</summary>
        public string Path => file.Path;

        /// <summary>True to make the file NOCOW, false to make it COW.</summary>
        public bool ToNoCow { get; }

        /// <summary>The file already is in the wanted state: <see cref="Run"/> would do nothing.</summary>
        public bool AlreadyInState { get; private set; }

        /// <summary>File size in bytes.</summary>
        public long Size => file.Size;

        /// <summary>Bytes of data to copy (holes excluded).</summary>
        public long DataBytes { get; private set; }

        /// <summary>Free bytes on the filesystem before the copy.</summary>
        public long AvailableBytes { get; private set; }

        /// <summary>
        /// Free space the new copy needs: its data, or what the original has allocated up to its end (preallocated ranges
        /// are preallocated again), whichever is more, and what it has preallocated past its end (<see cref="PreallocatedPastEndBytes"/>).
        /// </summary>
        public long NeededBytes { get; private set; }

        /// <summary>Bytes the original has preallocated past its end (fallocate -n), which the new copy preallocates again.</summary>
        public long PreallocatedPastEndBytes { get; private set; }

        /// <summary>Things the user should know that do not stop the conversion.</summary>
        public IReadOnlyList<string> Warnings => warnings;

        /// <summary>Bytes of the file in extents shared with reflink copies or snapshots (FIEMAP): the new file holds its own copy of them. One FIEMAP pass, for a preview.</summary>
        public long SharedBytes() => Fiemap.Shared(file.Handle, file.Path).Bytes;

        /// <summary>
        /// Opens <paramref name="path"/> (never through a symbolic link) and checks everything that
        /// refuses a conversion: not btrfs, immutable or append-only, read-only mount or snapshot,
        /// active swapfile, more than one hard link (unless allowed), open or mapped by a process (a
        /// write lease proves it; see <see cref="NoCowConversionOptions.AssumeNotInUse"/>), compressed
        /// (to NOCOW, unless <see cref="NoCowConversionOptions.DropCompression"/>), not enough free
        /// space. Throws <see cref="FileOperationException"/>.
        /// </summary>
        public static NoCowConversion Prepare(string path, bool toNoCow, NoCowConversionOptions? options = null) =>
            Prepare(OpenFile.Open(path, OpenOptions.NoFollow), toNoCow, options);

        /// <summary>As <see cref="Prepare(string, bool, NoCowConversionOptions?)"/>, for a file the tree walker found: opened relative to its directory.</summary>
        internal static NoCowConversion Prepare(FileLocation location, bool toNoCow, NoCowConversionOptions? options = null) =>
            Prepare(OpenFile.Open(location, OpenOptions.NoFollow | OpenOptions.KnownRegular), toNoCow, options);

        private static NoCowConversion Prepare(OpenFile file, bool toNoCow, NoCowConversionOptions? options)
        {
            var plan = new NoCowConversion(file, toNoCow, options ?? new NoCowConversionOptions());
            try
            {
                plan.Check();
                return plan;
            }
            catch
            {
                plan.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Rewrites the file. <paramref name="progress"/> gets the bytes copied so far; cancellation
        /// (or an exception from <paramref name="progress"/>) aborts with the original untouched.
        /// </summary>
        internal void Run(RewriteSession session, Action<long>? progress, CancellationToken cancel, Action<string>? notice = null)
        {
            if (AlreadyInState)
            {
                return;
            }

            SafeRewrite.Run(file, session, RewriteOptions(progress, cancel, notice));
        }

        /// <summary>
        /// Rewrites the file up to the exchange of names and returns the replacement in its grace; then
        /// <see cref="Complete"/>. This conversion must not be disposed before that.
        /// </summary>
        internal PendingReplacement Start(RewriteSession session, Action<long>? progress, CancellationToken cancel, Action<string>? notice = null)
        {
            if (AlreadyInState)
            {
                throw new InvalidOperationException("The file is already in the wanted state.");
            }

            return SafeRewrite.Start(file, session, RewriteOptions(progress, cancel, notice));
        }

        /// <summary>
        /// With <see cref="NoCowConversionOptions.LinkTo"/>: makes the file's name a hard link of the file another of its names
        /// was converted into, once its data reads back identical (see <see cref="SafeRewrite.StartRelink"/>), and returns the
        /// replacement in its grace; then <see cref="Complete"/>.
        /// </summary>
        internal PendingReplacement StartRelink(RewriteSession session, CancellationToken cancel, Action<string>? notice = null)
        {
            ConvertedLink twin = options.LinkTo ?? throw new InvalidOperationException("No converted file to link to.");
            OpenFile opened;
            try
            {
                opened = OpenFile.Open(twin.Path, OpenOptions.NoFollow);
            }
            catch (FileOperationException ex)
            {
                throw new FileOperationException(
                    FileErrorKind.ChangedDuringCopy,
                    ex.Errno,
                    ex.Operation,
                    file.Path,
                    $"Cannot make '{file.Path}' a link of '{twin.Path}', which this run converted from another name of the same file: that cannot be opened now ({ex.Message.TrimEnd('.')}). '{file.Path}' was left as it is; convert it on its own to give it a copy of its own.",
                    ex);
            }

            using OpenFile converted = opened;
            if (twin.Copy is not FileStatus copy || !converted.Status.SameInode(copy))
            {
                throw new FileOperationException(
                    FileErrorKind.ChangedDuringCopy,
                    0,
                    "statx",
                    file.Path,
                    $"Cannot make '{file.Path}' a link of '{twin.Path}', which this run converted from another name of the same file: that name leads to another file now. '{file.Path}' was left as it is; convert it on its own to give it a copy of its own.");
            }

            return SafeRewrite.StartRelink(file, converted, twin, session, RewriteOptions(null, cancel, notice));
        }

        /// <summary>The original's state when it was opened.</summary>
        internal FileStatus Original => file.Status;

        /// <summary>The original as it is now (after its conversion: for <see cref="ConvertedLinks"/>), through the descriptor the plan holds.</summary>
        internal FileStatus OriginalNow() => file.Restat();

        /// <summary>Waits out <paramref name="pending"/>'s grace (throws if it was undone), then syncs the directory.</summary>
        internal void Complete(PendingReplacement pending)
        {
            pending.Finish();
            SafeRewrite.SyncDirectory(file);
        }

        /// <summary>The directory's fsync after a replacement that went through (its result no longer written).</summary>
        internal void SyncDirectory() => SafeRewrite.SyncDirectory(file);

        /// <summary>True when <paramref name="other"/> is the file this conversion opened (the original).</summary>
        internal bool IsOriginal(in FileStatus other) => file.Status.SameInode(other);

        /// <summary>
        /// The file has other hard links: its grace is waited out before any other file is opened (opening
        /// the same inode under another name would count as someone opening it).
        /// </summary>
        internal bool SettlesBeforeNext => file.Status.Links > 1;

        private RewriteOptions RewriteOptions(Action<long>? progress, CancellationToken cancel, Action<string>? notice) => new()
        {
            SetFlags = ToNoCow ? InodeFlags.NoCow : InodeFlags.None,
            // To NOCOW: "do not compress" (chattr +m) goes without saying for NOCOW data, and btrfs refuses the two together.
            // To COW: the copy keeps the original's compression setting, not one its directory would give a new file
            // (chattr +c or +m, a compression property: cleared, which also drops the property).
            ClearFlags = ToNoCow ? InodeFlags.Compress | InodeFlags.NoCompress : InodeFlags.NoCow | (InodeFlags.Compress | InodeFlags.NoCompress) & ~originalFlags,
            SkipXattrs = ToNoCow ? new[] { NoCowAttribute.CompressionProperty } : Array.Empty<string>(),
            Progress = progress,
            Cancel = cancel,
            ForceNamedTemporary = options.ForceNamedTemporary,
            AssumeNotInUse = options.AssumeNotInUse,
            Notice = notice,
            BeforeSwap = options.BeforeSwap,
            Exchange = options.Exchange,
        };

        /// <summary>Runs with a session of its own (Core used alone).</summary>
        public void Run(Action<long>? progress = null, CancellationToken cancel = default)
        {
            using var session = new RewriteSession();
            Run(session, progress, cancel);
        }

        /// <summary>Test-NoCow -Detailed of the file now under the name (the new one after <see cref="Run"/>), opened relative to its directory.</summary>
        public NoCowStatus Inspect()
        {
            using OpenFile now = OpenFile.Open(new FileLocation(file.Directory!, file.Name, file.Path), OpenOptions.NoFollow);
            return NoCowInspector.Inspect(now);
        }

        /// <inheritdoc/>
        public void Dispose() => file.Dispose();

        private void Check()
        {
            string what = ToNoCow ? "convert {0} to NOCOW" : "convert {0} to COW";
            NoCowAttribute.ThrowUnlessBtrfs(file, what);
            InodeFlags flags = InodeAttributes.Get(file.Handle, file.Path);
            originalFlags = flags;
            if (((flags & InodeFlags.NoCow) != 0) == ToNoCow)
            {
                AlreadyInState = true;
                return;
            }

            FileGuards.ThrowIfUnchangeable(file, flags, what, walkedItem: true);
            FileGuards.ThrowIfDirectoryKeepsItsNames(file, what);
            if (options.LinkTo is not null)
            {
                // Nothing is copied: the name becomes a link of a file converted already (no space, owner or compression to check).
                SafeRewrite.ThrowIfDirectoryNamedOnly(file, what);
                FileGuards.ThrowIfInUse(file, what, options.AssumeNotInUse);
                AvailableBytes = file.AvailableBytes();
                return;
            }

            if (file.Status.Links > 1)
            {
                if (!options.AllowHardLinks)
                {
                    throw new FileOperationException(
                        FileErrorKind.HardLinks,
                        0,
                        "statx",
                        file.Path,
                        $"Cannot {FileGuards.Phrase(what, file.Path)}: it has {file.Status.Links} hard links, and the conversion replaces this name with a new file, so the other names would keep the old data. Use -Force to convert this name anyway (the other links stay as they are). Nothing was changed.");
                }

                warnings.Add($"'{file.Path}' has {file.Status.Links} hard links: this name gets the converted file; another of its names that this run reaches later (-Recurse, or piped) is made a link of the converted file; a name it does not reach (or not before it ends, is stopped or killed) keeps the old data and its attributes, a file of its own from then on: a later run cannot tell it was a link.");
            }

            CheckCompression(flags, what);
            SafeRewrite.ThrowIfDirectoryNamedOnly(file, what);
            MetadataCopy.ThrowIfOwnerCannotBeGiven(file, what);
            FileGuards.ThrowIfInUse(file, what, options.AssumeNotInUse);

            DataBytes = DataCopy.DataBytes(file.Handle, file.Size, file.Path);
            long needed = NeededBytes = DataCopy.SpaceNeeded(file, DataBytes, out long beyond);
            PreallocatedPastEndBytes = beyond;
            AvailableBytes = file.AvailableBytes(needed);
            if (needed > AvailableBytes)
            {
                throw new FileOperationException(
                    FileErrorKind.InsufficientSpace,
                    0,
                    "statfs",
                    file.Path,
                    $"Cannot {FileGuards.Phrase(what, file.Path)}: the new copy needs {SizeFormatter.Format(needed)}{DataCopy.PreallocatedPastEndNote(beyond, "the original")} and only {SizeFormatter.Format(AvailableBytes)} is free on its filesystem. Free some space and try again. Nothing was changed.");
            }
        }

        /// <summary>
        /// NOCOW and compression exclude each other (btrfs never compresses NOCOW data, and refuses
        /// both flags, or the compression property on a NOCOW file, with EINVAL): decided before
        /// anything is written, never half-way.
        /// </summary>
        private void CheckCompression(InodeFlags flags, string what)
        {
            if (!ToNoCow)
            {
                return;
            }

            string? property = NoCowAttribute.CompressionPropertyOf(file);
            bool attribute = (flags & InodeFlags.Compress) != 0;
            if (!attribute && property is null)
            {
                // Data a compress mount option compressed: no setting of the file's own to drop, but the copy stores
                // it uncompressed, which can take many times the space it takes now (said, not refused).
                if (file.FileSystem.Kind == FileSystemKind.Btrfs
                    && MountTable.Current().For(file)?.CompressOption is string mount
                    && FragmentationAnalyzer.Count(file, FragmentationAnalyzer.DefaultThreshold, sync: false).CompressedBytes is long compressed and > 0)
                {
                    warnings.Add($"{SizeFormatter.Format(compressed)} of '{file.Path}' is stored compressed ({mount}); the NOCOW copy stores it uncompressed (NOCOW data is never compressed), so it can take more space on disk than it does now.");
                }

                return;
            }

            string has = attribute && property is not null ? $"the compression attribute (chattr +c) and the compression property '{property}' (btrfs property)"
                : attribute ? "the compression attribute (chattr +c)"
                : $"the compression property '{property}' (btrfs property set ... compression)";
            if (!options.DropCompression)
            {
                throw new FileOperationException(
                    FileErrorKind.NoCowConflictsWithCompression,
                    0,
                    "FS_IOC_GETFLAGS",
                    file.Path,
                    $"Cannot {FileGuards.Phrase(what, file.Path)}: it has {has}, and btrfs never compresses NOCOW data, so the two exclude each other. Add -DropCompression to convert it without compression, or clear it first (chattr -c; btrfs property set <file> compression ''). Nothing was changed.");
            }

            warnings.Add($"'{file.Path}' has {has}; the NOCOW copy will not have it (-DropCompression), because NOCOW data is never compressed.");
        }
    }
}
