namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Text;
    using System.Text.RegularExpressions;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// A new directory tree built under a hidden, marked name beside its final name and published with one
    /// rename (renameat2 RENAME_NOREPLACE), so that the final name shows nothing until the copy has
    /// finished: a crash or kill -9 leaves only the hidden directory, marked with the extended attribute
    /// <see cref="TemporaryFile.MarkerAttribute"/> and locked (flock) while its run lives. The next run
    /// that stages a tree in the same directory removes such a leftover only when it is proven this
    /// module's own and abandoned: the marker matching its name, the same owner and device, and its lock
    /// free (no live process holds it, in any PID namespace), never by its name alone. Disposed unpublished
    /// (Ctrl+C, a terminating error, a name that appeared meanwhile), it removes what it built. Removal
    /// goes through descriptors only: every directory is opened relative to its parent with O_NOFOLLOW,
    /// checked to be the inode listed, on the same device and reached through the same mount (never into a
    /// mount point, a bind mount of the same filesystem included), and removed only while its name still
    /// leads to that inode, so nothing swapped or mounted in by someone else is ever emptied or removed.
    /// </summary>
    internal sealed partial class StagingDirectory : IDisposable
    {
        /// <summary>The marker of a tree being copied (New-BtrfsReflink -Recurse).</summary>
        internal const string CopyMarker = ".~btrfs-staging-";

        /// <summary>
        /// The marker of a directory only this user may change, into which Remove-BtrfsSubvolume moves a subvolume to
        /// delete it where nobody else can rename it. Its contents are never removed: it is removed only empty, disposed
        /// or left by a killed run (what is in it is not this module's to remove: a subvolume the kernel refused, or what
        /// was found under a subvolume's name and could not be given it back).
        /// </summary>
        internal const string RemovalMarker = ".~btrfs-removing-";

        /// <summary>
        /// How long the end of the process (SIGTERM, SIGHUP) waits for the trees being built to be removed by their runs:
        /// a clone of a file of millions of extents, or the removal of one, takes seconds each (a hostile review: 10 s left
        /// such a tree behind); well within systemd's 90 s before it kills.
        /// </summary>
        private static readonly TimeSpan BuildsStopWithin = TimeSpan.FromSeconds(30);

        /// <summary>Copied trees being built (not published, not disposed): the process's end waits for them to be removed.</summary>
        private static readonly HashSet<StagingDirectory> Building = new();

        private readonly SafeFileDescriptor parent;
        private readonly string marker;
        private readonly string hiddenName;
        private readonly string finalName;
        private readonly FileStatus status;
        private bool published;

        private StagingDirectory(SafeFileDescriptor parent, SafeFileDescriptor handle, FileStatus status, string hiddenName, string finalName, string finalPath, string marker)
        {
            this.parent = parent;
            this.marker = marker;
            Handle = handle;
            this.status = status;
            this.hiddenName = hiddenName;
            this.finalName = finalName;
            FinalPath = finalPath;
        }

        /// <summary>The hidden directory, open (O_NOFOLLOW | O_DIRECTORY) and locked: the tree is built relative to it.</summary>
        internal SafeFileDescriptor Handle { get; }

        /// <summary>Where the tree appears when it is published.</summary>
        internal string FinalPath { get; }

        /// <summary>The hidden directory's own path (for messages).</summary>
        internal string HiddenPath => FinalPath[..^finalName.Length] + hiddenName;

        /// <summary>The tree has its final name.</summary>
        internal bool Published => published;

        /// <summary>The leftovers of killed runs that were removed when this one was created.</summary>
        internal IReadOnlyList<string> RemovedLeftovers { get; private set; } = Array.Empty<string>();

        /// <summary>Leftovers proven this module's own that were not (wholly) removed: something is mounted on or inside them, or they changed while being emptied.</summary>
        internal IReadOnlyList<string> KeptLeftovers { get; private set; } = Array.Empty<string>();

        /// <summary>
        /// Creates the hidden directory for <paramref name="finalName"/> in the open directory
        /// <paramref name="parent"/> with permission bits <paramref name="mode"/> (the umask applies, as for
        /// any new directory), checks it is still an empty directory, locks and marks it, and
        /// removes the proven leftovers of killed runs there (of the same <paramref name="marker"/>: <see cref="CopyMarker"/>
        /// or <see cref="RemovalMarker"/>). Throws <see cref="FileOperationException"/>.
        /// </summary>
        internal static StagingDirectory Create(SafeFileDescriptor parent, string parentPath, string finalName, uint mode, string marker = CopyMarker)
        {
            string finalPath = parentPath == "/" ? "/" + finalName : parentPath + "/" + finalName;
            if (Encoding.UTF8.GetByteCount(finalName) > 255)
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.ENAMETOOLONG, "mkdirat", finalPath, $"Cannot create '{finalPath}': its name is longer than the 255 bytes a file name may have (NAME_MAX). Give a shorter name. Nothing was created.");
            }

            string stamp = TemporaryFile.NewStamp();
            string hidden = TemporaryFile.HiddenName(finalName, marker, stamp);
            int errno = Names.TryMakeDirectory(parent, hidden, mode);
            if (errno != 0)
            {
                throw FileOperationException.FromErrno(errno, "mkdirat", finalPath, "Cannot create the directory", errno is Errno.EACCES or Errno.EPERM ? "Writing into its directory needs write permission there. Nothing was created." : "Nothing was created.");
            }

            SafeFileDescriptor? fd = Names.TryOpenDirectory(parent, hidden, noFollow: true, out errno);
            // (btrfs counts one link for every directory, and files are created with the filesystem uid,
            // which may differ from the effective one: emptiness and the free lock are what can be checked.)
            if (fd is null || FileStatus.Of(fd) is not { IsDirectory: true } st || DirectoryListing.Names(fd).Count != 0 || !Locks.TryLockExclusive(fd))
            {
                // Not the new empty directory just made (someone swapped the name): it is left alone.
                fd?.Dispose();
                throw new FileOperationException(FileErrorKind.ChangedDuringCopy, errno, "openat", finalPath, $"Cannot build '{finalPath}': the hidden directory just created beside it was replaced by something else. Nothing of it was touched; run it again.");
            }

            // Best effort: without user extended attributes the directory is simply never removed as a leftover.
            _ = Xattrs.TrySet(fd, TemporaryFile.MarkerAttribute, Encoding.ASCII.GetBytes(stamp));
            var staging = new StagingDirectory(parent, fd, st, hidden, finalName, finalPath, marker);
            if (marker == CopyMarker)
            {
                // SIGTERM or SIGHUP while it is built: its run stops between files and removes it (as on Ctrl+C), and
                // the process's end waits for that (before: the hidden tree was left for the next run; a hostile review).
                ProcessEnd.Hook(WaitForBuildsToStop, waits: true);
                lock (Building)
                {
                    Building.Add(staging);
                }
            }

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
            if (FileStatus.OfAt(parent, hiddenName) is not FileStatus now || !now.SameInode(status))
            {
                throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "renameat2", FinalPath, $"Cannot give the copied tree the name '{FinalPath}': its hidden directory was renamed or replaced by someone else meanwhile. Nothing was renamed.");
            }

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
            Xattrs.TryRemove(Handle, TemporaryFile.MarkerAttribute); // a published tree carries no marker
            Built();
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            if (!published)
            {
                // Through the descriptor it built with, and its name removed only while it still leads there. One that
                // holds subvolumes to delete is never emptied: what is left in it (a subvolume the kernel refused, or
                // what was found under a subvolume's name and could not be given it back) is not this run's to remove.
                if (marker != RemovalMarker)
                {
                    RemoveContents(Handle, status);
                }

                if (FileStatus.OfAt(parent, hiddenName) is FileStatus now && now.SameInode(status))
                {
                    _ = Names.TryRemoveDirectory(parent, hiddenName);
                }
            }

            Handle.Dispose();
            Built();
        }

        /// <summary>
        /// The end of the process by a signal: waits (at most <see cref="BuildsStopWithin"/>) until the trees being built
        /// were removed by their runs, which stop between files once the signal came (<see cref="ProcessEnd.Signalled"/>).
        /// </summary>
        private static void WaitForBuildsToStop()
        {
            if (!ProcessEnd.Signalled)
            {
                return; // an exit: no run is building any more
            }

            var clock = System.Diagnostics.Stopwatch.StartNew();
            lock (Building)
            {
                while (Building.Count > 0)
                {
                    // The time left read once: read twice, it could go below zero between the reads, and a wait of -1 ms
                    // never ends (a review).
                    TimeSpan left = BuildsStopWithin - clock.Elapsed;
                    if (left <= TimeSpan.Zero)
                    {
                        break;
                    }

                    Monitor.Wait(Building, left);
                }
            }
        }

        /// <summary>Published or removed: no longer being built.</summary>
        private void Built()
        {
            lock (Building)
            {
                if (Building.Remove(this))
                {
                    Monitor.PulseAll(Building);
                }
            }
        }

        /// <summary>
        /// Empties the directory open as <paramref name="root"/> (of status <paramref name="rootStatus"/>):
        /// files and symbolic links are unlinked (a link is never followed), subdirectories on the same device
        /// emptied and removed, each opened relative to its parent with O_NOFOLLOW and checked to be the inode
        /// listed. Iterative (an explicit stack, one level's names at a time). True when it is empty afterwards.
        /// </summary>
        private static bool RemoveContents(SafeFileDescriptor root, FileStatus rootStatus)
        {
            bool complete = true;
            var stack = new Stack<Level>();
            stack.Push(new Level(root, null, string.Empty, rootStatus, owned: false));
            try
            {
                while (stack.Count > 0)
                {
                    Level level = stack.Peek();
                    if (!level.Listed)
                    {
                        // One pass: files and links unlinked, subdirectories remembered (this level's names only).
                        foreach (string entry in DirectoryListing.Names(level.Dir))
                        {
                            if (FileStatus.OfAt(level.Dir, entry) is not FileStatus child)
                            {
                                continue;
                            }

                            if (child.IsDirectory)
                            {
                                level.Subdirectories.Enqueue((entry, child));
                            }
                            else
                            {
                                complete &= Names.TryRemove(level.Dir, entry);
                            }
                        }

                        level.Listed = true;
                    }

                    if (level.Subdirectories.TryDequeue(out (string Name, FileStatus Status) next))
                    {
                        SafeFileDescriptor? sub = Names.TryOpenDirectory(level.Dir, next.Name, noFollow: true, out _);
                        if (sub is null || FileStatus.Of(sub) is not FileStatus now || !now.SameInode(next.Status) || next.Status.DevMajor != rootStatus.DevMajor || next.Status.DevMinor != rootStatus.DevMinor || !SameMount(now, rootStatus))
                        {
                            sub?.Dispose();
                            complete = false; // swapped meanwhile, or something mounted there (a bind mount of the same filesystem too): left alone
                            continue;
                        }

                        stack.Push(new Level(sub, level.Dir, next.Name, next.Status, owned: true));
                        continue;
                    }

                    stack.Pop();
                    if (level.Parent is not null)
                    {
                        complete &= FileStatus.OfAt(level.Parent, level.Name) is FileStatus again && again.SameInode(level.Status) && Names.TryRemoveDirectory(level.Parent, level.Name);
                    }

                    level.Dispose();
                }
            }
            finally
            {
                while (stack.Count > 0)
                {
                    stack.Pop().Dispose();
                }
            }

            return complete;
        }

        /// <summary>Whether two inodes are reached through the same mount (statx's mount id; a bind mount of the same filesystem has the same device but another mount). Unknown (a kernel before 5.8): not the same, so nothing is removed.</summary>
        private static bool SameMount(FileStatus a, FileStatus b) => a.MountId != 0 && a.MountId == b.MountId;

        /// <summary>
        /// Removes the hidden trees that runs of this module left in the parent directory when they were
        /// killed, and only those: a name of the pattern, a directory of the same owner and device as the
        /// one just created, the marker matching the name, and its lock free (its run is gone).
        /// </summary>
        private List<string> RemoveLeftovers()
        {
            var removed = new List<string>();
            var kept = new List<string>();
            KeptLeftovers = kept;
            foreach (string n in DirectoryListing.Names(parent))
            {
                Match m = LeftoverName().Match(n);
                if (!m.Success || n == hiddenName || m.Groups["marker"].Value != marker)
                {
                    continue;
                }

                using SafeFileDescriptor? fd = Names.TryOpenDirectory(parent, n, noFollow: true, out _);
                if (fd is null
                    || FileStatus.Of(fd) is not FileStatus st
                    || !st.IsDirectory
                    || st.Uid != status.Uid
                    || st.DevMajor != status.DevMajor
                    || st.DevMinor != status.DevMinor
                    || Xattrs.TryGetText(fd, TemporaryFile.MarkerAttribute) != m.Groups["stamp"].Value
                    || Directory.Exists("/proc/" + m.Groups["pid"].Value)
                    || !Locks.TryLockExclusive(fd))
                {
                    continue; // not proven ours, or its run still lives (it holds the lock)
                }

                // Through the descriptor just examined; the name removed only while it still leads there. Never
                // into a mount: something mounted on the leftover, or inside it, keeps it (said so).
                bool emptied = marker == RemovalMarker ? DirectoryListing.Names(fd).Count == 0 : RemoveContents(fd, st); // a removal's: only when empty
                if (SameMount(st, status) && emptied && FileStatus.OfAt(parent, n) is FileStatus again && again.SameInode(st) && Names.TryRemoveDirectory(parent, n))
                {
                    removed.Add(n);
                }
                else
                {
                    kept.Add(n);
                }
            }

            return removed;
        }

        /// <summary>A directory being emptied: its descriptor, where it is, and the subdirectories still to empty.</summary>
        private sealed class Level(SafeFileDescriptor dir, SafeFileDescriptor? parent, string name, FileStatus status, bool owned) : IDisposable
        {
            internal SafeFileDescriptor Dir { get; } = dir;

            internal SafeFileDescriptor? Parent { get; } = parent;

            internal string Name { get; } = name;

            internal FileStatus Status { get; } = status;

            internal bool Listed { get; set; }

            internal Queue<(string Name, FileStatus Status)> Subdirectories { get; } = new();

            public void Dispose()
            {
                if (owned)
                {
                    Dir.Dispose();
                }
            }
        }

        /// <summary>
        /// The process building (or removing) the tree under the hidden name <paramref name="name"/> in <paramref name="parent"/>:
        /// a name of the pattern, that process running, the run's marker on the directory, and the process holding it open
        /// (<see cref="TemporaryFile.HeldByItsRun"/>), as <see cref="TemporaryFile.RunningRewriteOf"/> proves
        /// a file's. A walk does not enter it (a review: a walk beside New-BtrfsReflink -Recurse entered the tree being built,
        /// counted it twice, found duplicates that moved, and a conversion would have copied its reflinked files). Null
        /// for any other name, and for this process's own trees.
        /// </summary>
        internal static int? RunningOf(SafeFileDescriptor parent, string name)
        {
            Match m = LeftoverName().Match(name);
            if (!m.Success || !Directory.Exists("/proc/" + m.Groups["pid"].Value))
            {
                return null;
            }

            int pid = int.Parse(m.Groups["pid"].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);
            if (pid == Environment.ProcessId)
            {
                return null; // this process's own: a tree copy that meets its destination is refused where it meets it (DestinationInsideSource)
            }

            using SafeFileDescriptor? named = Names.TryName(parent, name);
            if (named is null)
            {
                return pid; // gone already
            }

            return Xattrs.TryGetTextOfNamed(named, TemporaryFile.MarkerAttribute) == m.Groups["stamp"].Value && TemporaryFile.HeldByItsRun(pid, named) ? pid : null;
        }

        [GeneratedRegex(@"^\..*(?<marker>\.~btrfs-(?:staging|removing)-)(?<stamp>(?<pid>\d+)-[0-9a-f]{8})$", RegexOptions.CultureInvariant)]
        private static partial Regex LeftoverName();
    }
}
