namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Runtime.InteropServices;
    using System.Text;
    using System.Text.RegularExpressions;
    using System.Threading;
    using System.Threading.Tasks;
    using Btrfs.Interop;

    /// <summary>What a rewrite changes on the new inode, and how it reports.</summary>
    internal sealed class RewriteOptions
    {
        /// <summary>Inode flags set on the new file while it is still empty (NOCOW only takes on an empty file).</summary>
        public InodeFlags SetFlags { get; init; }

        /// <summary>Inode flags cleared on the new file while it is still empty.</summary>
        public InodeFlags ClearFlags { get; init; }

        /// <summary>Called with the bytes copied so far, after every chunk. May throw to abort.</summary>
        public Action<long>? Progress { get; init; }

        /// <summary>Checked between chunks and steps; cancellation aborts with the original untouched.</summary>
        public CancellationToken Cancel { get; init; }

        /// <summary>Skip O_TMPFILE and use a hidden named temporary file (the path for filesystems without O_TMPFILE; tests use it).</summary>
        public bool ForceNamedTemporary { get; init; }
    }

    /// <summary>
    /// Remembers, for one run of a cmdlet, the directories whose stale temporary files have been
    /// cleaned up already, so a directory of many files is listed once.
    /// </summary>
    internal sealed class RewriteSession
    {
        private readonly HashSet<string> cleaned = new(StringComparer.Ordinal);

        internal bool FirstVisit(string directory) => cleaned.Add(directory);
    }

    /// <summary>
    /// Replaces a file's data with a fresh copy in a new inode, safely: a temporary file on the same
    /// filesystem in the same directory (O_TMPFILE, so a crash leaves nothing; otherwise a hidden
    /// name that every exit path removes and that the next run in the directory cleans up), its
    /// attributes set while it is empty, a hole-preserving read/write copy, fsync, the original's
    /// mode, owner, group, times, extended attributes (ACLs included) and usage flags, a byte-for-byte
    /// comparison, a check that the original did not change meanwhile and that no other process
    /// opened it, then an atomic rename over the original and an fsync of the directory. Any failure
    /// or cancellation before the rename leaves the original exactly as it was and no temporary file.
    /// </summary>
    internal static partial class SafeRewrite
    {
        /// <summary>Hidden temporary names: ".&lt;name&gt;.~btrfs-&lt;pid&gt;-&lt;8 hex&gt;".</summary>
        internal const string Marker = ".~btrfs-";

        /// <summary>Runs the rewrite of <paramref name="source"/> (opened with <see cref="OpenOptions.NoFollow"/>).</summary>
        internal static void Run(RegularFile source, RewriteSession session, RewriteOptions options)
        {
            string full = System.IO.Path.GetFullPath(source.Path);
            string dirPath = System.IO.Path.GetDirectoryName(full) ?? "/";
            string name = System.IO.Path.GetFileName(full);
            FileStatus before = source.Status;

            using SafeFileDescriptor dir = Libc.Open(dirPath, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir.IsInvalid)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "open", dirPath, "Cannot open the directory of");
            }

            if (session.FirstVisit(dirPath))
            {
                RemoveStaleTemporaries(dir, dirPath);
            }

            using TemporaryFile temp = TemporaryFile.Create(dir, dirPath, name, options.ForceNamedTemporary);
            string tempLabel = $"the new copy of '{source.Path}'";

            // 1. Attributes that only take on an empty file.
            InodeFlags tempFlags = InodeFlagsIo.Get(temp.Handle, tempLabel);
            InodeFlags wanted = (tempFlags | options.SetFlags) & ~options.ClearFlags;
            if (wanted != tempFlags)
            {
                tempFlags = InodeFlagsIo.Set(temp.Handle, tempLabel, wanted);
            }

            if ((tempFlags & options.SetFlags) != options.SetFlags || (tempFlags & options.ClearFlags) != 0)
            {
                throw new FileOperationException(
                    FileErrorKind.NoCowNotApplied,
                    0,
                    "FS_IOC_SETFLAGS",
                    source.Path,
                    $"Cannot rewrite '{source.Path}': the new empty file did not take the attributes asked for (it has {tempFlags}). The original is unchanged.");
            }

            // 2. The data, synced, then proof that it reads back identical (before the times are set:
            //    reading the copy could move its access time).
            options.Cancel.ThrowIfCancellationRequested();
            HoleAwareCopy.Copy(source, temp.Handle, source.Path, before.Size, options.Progress, options.Cancel);
            if (!SyncWhileComparing(source, temp.Handle, tempLabel, before.Size, options.Cancel))
            {
                ThrowIfChanged(source, before, dir, name); // a writer explains a difference better than the disk does
                throw new FileOperationException(
                    FileErrorKind.VerificationFailed,
                    0,
                    "compare",
                    source.Path,
                    $"Cannot rewrite '{source.Path}': the copy did not read back identical to the original, so it was discarded. The original is unchanged. Check the filesystem (dmesg, btrfs device stats).");
            }

            // 3. The metadata, times last (every other change would touch them).
            InodeFlags originalFlags = InodeFlagsIo.Get(source.Handle, source.Path);
            MetadataCopy.Copy(source, temp.Handle, tempLabel, tempFlags, originalFlags);
            Sync(temp.Handle, source.Path, before.Size);

            // 4. The original did not change meanwhile and nobody opened it.
            options.Cancel.ThrowIfCancellationRequested();
            ThrowIfChanged(source, before, dir, name);
            FileGuards.ThrowIfInUse(source, "rewrite");
            options.Cancel.ThrowIfCancellationRequested();

            // 5. Into place, atomically.
            temp.LinkAndReplace(name, source.Path);
            if (Libc.FSync(dir) != 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "fsync", dirPath, "The new file is in place, but the directory could not be synced:");
            }
        }

        /// <summary>Removes hidden temporary files left in the directory by runs whose process no longer exists.</summary>
        internal static int RemoveStaleTemporaries(SafeFileDescriptor dir, string dirPath)
        {
            int removed = 0;
            string[] names;
            try
            {
                names = Directory.GetFiles(dirPath, "." + "*" + Marker + "*");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return 0;
            }

            foreach (string path in names)
            {
                string file = System.IO.Path.GetFileName(path);
                Match m = TemporaryName().Match(file);
                if (!m.Success || Directory.Exists("/proc/" + m.Groups["pid"].Value))
                {
                    continue;
                }

                if (Libc.StatXAt(dir, file, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_TYPE, out Libc.StatX st) == 0
                    && (st.Mode & Libc.S_IFMT) == Libc.S_IFREG
                    && Libc.UnlinkAt(dir, file, 0) == 0)
                {
                    removed++;
                }
            }

            return removed;
        }

        /// <summary>
        /// fsync of the copy on another thread while its data is compared with the original's: the
        /// disk writes and the comparison (page cache and CPU) overlap. Both must succeed.
        /// </summary>
        private static bool SyncWhileComparing(RegularFile source, SafeFileDescriptor copy, string copyLabel, long size, CancellationToken cancel)
        {
            Task<int> sync = Task.Run(() => Libc.FSync(copy) == 0 ? 0 : Marshal.GetLastPInvokeError());
            bool same;
            try
            {
                same = HoleAwareCopy.SameData(source, copy, copyLabel, size, cancel);
            }
            finally
            {
                int errno = sync.GetAwaiter().GetResult(); // the descriptor must outlive the fsync
                if (errno != 0)
                {
                    throw HoleAwareCopy.Failure(errno, "fsync", source.Path, size, size);
                }
            }

            return same;
        }

        private static void Sync(SafeFileDescriptor fd, string path, long size)
        {
            if (Libc.FSync(fd) != 0)
            {
                throw HoleAwareCopy.Failure(Marshal.GetLastPInvokeError(), "fsync", path, size, size);
            }
        }

        private static void ThrowIfChanged(RegularFile source, in FileStatus before, SafeFileDescriptor dir, string name)
        {
            FileStatus now = source.Restat();
            bool samePath = Libc.StatXAt(dir, name, Libc.AT_SYMLINK_NOFOLLOW, FileStatus.Mask, out Libc.StatX st) == 0 && FileStatus.From(st).SameInode(before);
            if (now.SameContentStamp(before) && samePath)
            {
                return;
            }

            string what = !samePath ? "its name now points to another file"
                : now.Size != before.Size ? $"its size went from {before.Size} to {now.Size} bytes"
                : "it was written to (its modification or change time moved)";
            throw new FileOperationException(
                FileErrorKind.ChangedDuringCopy,
                0,
                "statx",
                source.Path,
                $"Cannot rewrite '{source.Path}': the file changed while it was being copied ({what}). The original was left as it is now and the copy was removed. Try again when nothing writes to it.");
        }

        [GeneratedRegex(@"^\..*\.~btrfs-(?<pid>\d+)-[0-9a-f]{8}$", RegexOptions.CultureInvariant)]
        private static partial Regex TemporaryName();

        /// <summary>The temporary file: unnamed (O_TMPFILE) until the last moment, or hidden and always removed.</summary>
        private sealed class TemporaryFile : IDisposable
        {
            private readonly SafeFileDescriptor dir;
            private readonly string dirPath;
            private string? linkedName;
            private bool committed;

            private TemporaryFile(SafeFileDescriptor dir, string dirPath, SafeFileDescriptor handle, string? linkedName)
            {
                this.dir = dir;
                this.dirPath = dirPath;
                Handle = handle;
                this.linkedName = linkedName;
            }

            internal SafeFileDescriptor Handle { get; }

            internal static TemporaryFile Create(SafeFileDescriptor dir, string dirPath, string name, bool forceNamed)
            {
                if (!forceNamed)
                {
                    SafeFileDescriptor fd = Libc.OpenAt(dir, ".", Libc.O_TMPFILE | Libc.O_RDWR | Libc.O_CLOEXEC, 0x180);
                    if (!fd.IsInvalid)
                    {
                        return new TemporaryFile(dir, dirPath, fd, null);
                    }

                    int errno = Marshal.GetLastPInvokeError();
                    fd.Dispose();
                    if (errno is not (Libc.EOPNOTSUPP or Libc.EISDIR or Libc.EINVAL))
                    {
                        throw CreateFailure(errno, dirPath, name);
                    }
                }

                string hidden = HiddenName(name);
                SafeFileDescriptor named = Libc.OpenAt(dir, hidden, Libc.O_CREAT | Libc.O_EXCL | Libc.O_RDWR | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0x180);
                if (named.IsInvalid)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    named.Dispose();
                    throw CreateFailure(errno, dirPath, name);
                }

                return new TemporaryFile(dir, dirPath, named, hidden);
            }

            /// <summary>Gives the file a hidden name (if it has none yet) and renames it over <paramref name="name"/>.</summary>
            internal void LinkAndReplace(string name, string originalPath)
            {
                if (linkedName is null)
                {
                    string hidden = HiddenName(name);
                    string self = "/proc/self/fd/" + Handle.Fd.ToString(CultureInfo.InvariantCulture);
                    if (Libc.LinkAt(Libc.AT_FDCWD, self, dir, hidden, Libc.AT_SYMLINK_FOLLOW) != 0)
                    {
                        throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "linkat", originalPath, "Cannot give the new copy a name next to", "The original is unchanged.");
                    }

                    linkedName = hidden;
                }

                if (Libc.RenameAt(dir, linkedName, dir, name) != 0)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "renameat", originalPath, "Cannot put the new copy in place of", "The original is unchanged.");
                }

                committed = true;
            }

            public void Dispose()
            {
                if (!committed && linkedName is not null)
                {
                    _ = Libc.UnlinkAt(dir, linkedName, 0);
                }

                Handle.Dispose();
            }

            private static string HiddenName(string name)
            {
                // NAME_MAX is 255 bytes: keep a recognizable prefix of the name.
                string prefix = name;
                while (Encoding.UTF8.GetByteCount(prefix) > 200)
                {
                    prefix = prefix[..^1];
                }

                string pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
                string rand = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
                return "." + prefix + Marker + pid + "-" + rand;
            }

            private static FileOperationException CreateFailure(int errno, string dirPath, string name) =>
                FileOperationException.FromErrno(
                    errno,
                    "open(O_TMPFILE)",
                    System.IO.Path.Combine(dirPath, name),
                    "Cannot create the temporary copy next to",
                    errno is Libc.EACCES or Libc.EPERM ? "Writing into its directory needs write permission there. The original is unchanged." : "The original is unchanged.");
        }
    }
}
