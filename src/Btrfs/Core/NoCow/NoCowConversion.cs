namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading;
    using Btrfs.Interop;

    /// <summary>
    /// ConvertTo-NoCow / ConvertFrom-NoCow's Core: a checked plan for one file (everything that
    /// would refuse the conversion is found before anything is written), then <see cref="Run"/>,
    /// which rewrites the data into a new inode with (or without) NOCOW through <see cref="SafeRewrite"/>.
    /// </summary>
    public sealed class NoCowConversion : IDisposable
    {
        private readonly RegularFile file;
        private readonly List<string> warnings = new();

        private NoCowConversion(RegularFile file, bool toNoCow)
        {
            this.file = file;
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

        /// <summary>Things the user should know that do not stop the conversion.</summary>
        public IReadOnlyList<string> Warnings => warnings;

        /// <summary>
        /// Opens <paramref name="path"/> (never through a symbolic link) and checks everything that
        /// refuses a conversion: not btrfs, immutable or append-only, read-only mount or snapshot,
        /// active swapfile, more than one hard link (unless <paramref name="allowHardLinks"/>), open
        /// or mapped by a process, not enough free space. Throws <see cref="FileOperationException"/>.
        /// </summary>
        public static NoCowConversion Prepare(string path, bool toNoCow, bool allowHardLinks)
        {
            RegularFile file = RegularFile.Open(path, OpenOptions.NoFollow);
            var plan = new NoCowConversion(file, toNoCow);
            try
            {
                plan.Check(allowHardLinks);
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
        internal void Run(RewriteSession session, Action<long>? progress, CancellationToken cancel, bool forceNamedTemporary = false)
        {
            if (AlreadyInState)
            {
                return;
            }

            var options = new RewriteOptions
            {
                SetFlags = ToNoCow ? InodeFlags.NoCow : InodeFlags.None,
                ClearFlags = ToNoCow ? InodeFlags.Compress : InodeFlags.NoCow,
                Progress = progress,
                Cancel = cancel,
                ForceNamedTemporary = forceNamedTemporary,
            };
            SafeRewrite.Run(file, session, options);
        }

        /// <summary>Runs with a session of its own (Core used alone).</summary>
        public void Run(Action<long>? progress = null, CancellationToken cancel = default) => Run(new RewriteSession(), progress, cancel);

        /// <inheritdoc/>
        public void Dispose() => file.Dispose();

        private void Check(bool allowHardLinks)
        {
            string what = ToNoCow ? "convert {0} to NOCOW" : "convert {0} to COW";
            NoCowAttribute.ThrowUnlessBtrfs(file, what);
            InodeFlags flags = InodeFlagsIo.Get(file.Handle, file.Path);
            if (((flags & InodeFlags.NoCow) != 0) == ToNoCow)
            {
                AlreadyInState = true;
                return;
            }

            FileGuards.ThrowIfUnchangeable(file, flags, what);
            if (file.Status.Links > 1)
            {
                if (!allowHardLinks)
                {
                    throw new FileOperationException(
                        FileErrorKind.HardLinks,
                        0,
                        "statx",
                        file.Path,
                        $"Cannot {FileGuards.Phrase(what, file.Path)}: it has {file.Status.Links} hard links, and the conversion replaces this name with a new file, so the other names would keep the old data. Use -Force to convert this name anyway (the other links stay as they are). Nothing was changed.");
                }

                warnings.Add($"'{file.Path}' has {file.Status.Links} hard links: only this name gets the converted file; the other {file.Status.Links - 1} keep the old data and its attributes.");
            }

            FileGuards.ThrowIfInUse(file, what);

            DataBytes = HoleAwareCopy.DataBytes(file.Handle, file.Size, file.Path);
            AvailableBytes = file.AvailableBytes();
            long needed = Math.Max(DataBytes, Math.Min(file.Status.AllocatedBytes, file.Size));
            if (needed > AvailableBytes)
            {
                throw new FileOperationException(
                    FileErrorKind.InsufficientSpace,
                    Libc.ENOSPC,
                    "statfs",
                    file.Path,
                    $"Cannot {FileGuards.Phrase(what, file.Path)}: the new copy needs {SizeFormatter.Format(needed)} and only {SizeFormatter.Format(AvailableBytes)} is free on its filesystem. Free some space and try again. Nothing was changed.");
            }

            if (ToNoCow && (flags & InodeFlags.Compress) != 0)
            {
                warnings.Add($"'{file.Path}' has the compression attribute (chattr +c); the NOCOW copy will not have it, because NOCOW data is never compressed.");
            }
        }
    }
}
