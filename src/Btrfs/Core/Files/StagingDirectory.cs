namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Text;
    using System.Text.RegularExpressions;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// A new directory tree built under a hidden, marked name beside its final name and published with one
    /// rename (renameat2 RENAME_NOREPLACE), so that the final name shows either nothing or the whole tree:
    /// a crash or kill -9 leaves only the hidden directory, marked with the extended attribute
    /// <see cref="TemporaryFile.MarkerAttribute"/>, and the next run that stages a tree in the same
    /// directory removes it, proven to be this module's own by its marker (matching its name, the same
    /// owner, no process with its pid), never by its name alone. Disposed unpublished (Ctrl+C, a
    /// terminating error), it removes what it built.
    /// </summary>
    internal sealed partial class StagingDirectory : IDisposable
    {
        private const string Marker = ".~btrfs-staging-";
        private readonly SafeFileDescriptor parent;
        private readonly string hiddenName;
        private readonly string finalName;
        private readonly string stamp;
        private bool published;

        private StagingDirectory(SafeFileDescriptor parent, SafeFileDescriptor handle, string hiddenName, string finalName, string finalPath, string stamp)
        {
            this.parent = parent;
            Handle = handle;
            this.hiddenName = hiddenName;
            this.finalName = finalName;
            FinalPath = finalPath;
            this.stamp = stamp;
        }

        /// <summary>The hidden directory, open (O_NOFOLLOW | O_DIRECTORY): the tree is built relative to it.</summary>
        internal SafeFileDescriptor Handle { get; }

        /// <summary>Where the tree appears when it is published.</summary>
        internal string FinalPath { get; }

        /// <summary>The leftovers of killed runs that were removed when this one was created.</summary>
        internal IReadOnlyList<string> RemovedLeftovers { get; private set; } = Array.Empty<string>();

        /// <summary>
        /// Creates the hidden directory for <paramref name="finalName"/> in the open directory
        /// <paramref name="parent"/> with permission bits <paramref name="mode"/> (the umask applies, as for
        /// any new directory), marks it, and removes the proven leftovers of killed runs there. Throws
        /// <see cref="FileOperationException"/>.
        /// </summary>
        internal static StagingDirectory Create(SafeFileDescriptor parent, string parentPath, string finalName, uint mode)
        {
            string stamp = Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "-"
                + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
            string prefix = finalName;
            while (Encoding.UTF8.GetByteCount(prefix) > 200)
            {
                prefix = prefix[..^1];
            }

            string hidden = "." + prefix + Marker + stamp;
            string finalPath = parentPath == "/" ? "/" + finalName : parentPath + "/" + finalName;
            int errno = Names.TryMakeDirectory(parent, hidden, mode);
            if (errno != 0)
            {
                throw FileOperationException.FromErrno(errno, "mkdirat", finalPath, "Cannot create the directory", errno is Errno.EACCES or Errno.EPERM ? "Writing into its directory needs write permission there. Nothing was created." : "Nothing was created.");
            }

            SafeFileDescriptor? fd = Names.TryOpenDirectory(parent, hidden, noFollow: true, out errno);
            if (fd is null)
            {
                _ = Names.TryRemoveDirectory(parent, hidden);
                throw FileOperationException.FromErrno(errno, "openat", finalPath, "Cannot open the new directory", "Nothing was created.");
            }

            // Best effort: without user extended attributes the directory is simply never removed as a leftover.
            _ = Xattrs.TrySet(fd, TemporaryFile.MarkerAttribute, Encoding.ASCII.GetBytes(stamp));
            var staging = new StagingDirectory(parent, fd, hidden, finalName, finalPath, stamp);
            staging.RemovedLeftovers = staging.RemoveLeftovers();
            return staging;
        }

        /// <summary>
        /// Gives the tree its final name in one rename that never replaces anything: a name that appeared
        /// meanwhile is an error (AlreadyExists) and the tree is discarded on Dispose. Throws
        /// <see cref="FileOperationException"/>.
        /// </summary>
        internal void Publish()
        {
            Xattrs.TryRemove(Handle, TemporaryFile.MarkerAttribute); // a published tree carries no marker
            int errno = Names.TryRenameNoReplace(parent, hiddenName, finalName);
            if (errno == Errno.EEXIST || errno == Errno.ENOTEMPTY)
            {
                throw new FileOperationException(FileErrorKind.AlreadyExists, errno, "renameat2", FinalPath, $"Cannot create '{FinalPath}': something of that name appeared while the copy was made, and it is never replaced. It was left as it is; the copy was discarded.");
            }

            if (errno != 0)
            {
                throw FileOperationException.FromErrno(errno, "renameat2", FinalPath, "Cannot give the copied tree its name", "The copy was discarded.");
            }

            published = true;
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            Handle.Dispose();
            if (!published)
            {
                RemoveTree(parent, hiddenName);
            }
        }

        /// <summary>
        /// Removes <paramref name="name"/> in <paramref name="dir"/> and, for a directory, everything below it,
        /// through descriptors only (every directory opened with O_NOFOLLOW relative to its parent: a
        /// symbolic link is removed, never followed). Best effort: what cannot be removed stays.
        /// </summary>
        private static void RemoveTree(SafeFileDescriptor dir, string name)
        {
            SafeFileDescriptor? fd = Names.TryOpenDirectory(dir, name, noFollow: true, out _);
            if (fd is null)
            {
                _ = Names.TryRemove(dir, name);
                return;
            }

            using (fd)
            {
                foreach (string entry in DirectoryListing.Names(fd))
                {
                    if (FileStatus.OfAt(fd, entry) is { IsDirectory: true })
                    {
                        RemoveTree(fd, entry);
                    }
                    else
                    {
                        _ = Names.TryRemove(fd, entry);
                    }
                }
            }

            _ = Names.TryRemoveDirectory(dir, name);
        }

        /// <summary>
        /// Removes the hidden trees that runs of this module left in the parent directory when they were
        /// killed, and only those: a name of the pattern, a directory, the same owner as the one just
        /// created, the marker matching the name, and no process with the name's pid.
        /// </summary>
        private List<string> RemoveLeftovers()
        {
            var removed = new List<string>();
            if (FileStatus.Of(Handle) is not FileStatus mine)
            {
                return removed;
            }

            foreach (string n in DirectoryListing.Names(parent))
            {
                Match m = LeftoverName().Match(n);
                if (!m.Success || n == hiddenName || Directory.Exists("/proc/" + m.Groups["pid"].Value))
                {
                    continue;
                }

                using SafeFileDescriptor? fd = Names.TryOpenDirectory(parent, n, noFollow: true, out _);
                if (fd is null
                    || FileStatus.Of(fd) is not FileStatus st
                    || !st.IsDirectory
                    || st.Uid != mine.Uid
                    || st.DevMajor != mine.DevMajor
                    || st.DevMinor != mine.DevMinor
                    || Xattrs.TryGetText(fd, TemporaryFile.MarkerAttribute) != m.Groups["stamp"].Value)
                {
                    continue;
                }

                // The name must still lead to the directory just examined.
                if (FileStatus.OfAt(parent, n) is FileStatus again && again.SameInode(st))
                {
                    RemoveTree(parent, n);
                    removed.Add(n);
                }
            }

            return removed;
        }

        [GeneratedRegex(@"^\..*\.~btrfs-staging-(?<stamp>(?<pid>\d+)-[0-9a-f]{8})$", RegexOptions.CultureInvariant)]
        private static partial Regex LeftoverName();
    }
}
