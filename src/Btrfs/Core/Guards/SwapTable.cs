namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using Btrfs.Kernel;

    /// <summary>The active swapfiles (/proc/swaps), as device and inode, read once.</summary>
    internal sealed class SwapTable
    {
        private readonly List<FileStatus> swaps;
        private readonly List<string> paths = new();
        private readonly List<(string Path, FileStatus? Status, int Errno, long SizeKiB)> files = new();
        private List<string>? unplaced;

        private SwapTable(List<FileStatus> swaps) => this.swaps = swaps;

        internal static SwapTable Read()
        {
            var list = new List<FileStatus>();
            var names = new List<string>();
            var files = new List<(string, FileStatus?, int, long)>();
            string text;
            try
            {
                text = File.ReadAllText("/proc/swaps");
            }
            catch (IOException)
            {
                return new SwapTable(list);
            }

            MountTable? mounts = null;
            bool mountsRead = false;
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.StartsWith("Filename", StringComparison.Ordinal))
                {
                    continue;
                }

                string[] fields = line.Split(new[] { ' ', '\t' }, 3, StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length == 0)
                {
                    continue;
                }

                string path = MountTable.Unescape(fields[0]);
                names.Add(path);
                if (fields.Length > 1 && fields[1] == "file")
                {
                    if (!mountsRead)
                    {
                        mountsRead = true;
                        try
                        {
                            mounts = MountTable.Current(); // read again only when it changed: this runs once per file
                        }
                        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or OverflowException or FileOperationException)
                        {
                            mounts = null;
                        }
                    }

                    // A swapfile on NFS (or a path a FUSE or network mount now covers) is not looked up: a server
                    // that no longer answers would hold every guard, and such a file is in none of the local
                    // filesystems this module changes.
                    if (mounts?.Covering(path) is MountEntry covering && MountTable.IsRemote(covering.FileSystemType))
                    {
                        continue;
                    }
                }

                FileStatus? resolved = FileStatus.OfPath(path, followLinks: true, out int errno);
                if (resolved is FileStatus swap)
                {
                    list.Add(swap);
                }

                if (fields.Length > 1 && fields[1] == "file")
                {
                    string[] rest = fields.Length > 2 ? fields[2].Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries) : Array.Empty<string>();
                    long kib = rest.Length > 0 && long.TryParse(rest[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long k) ? k : -1;
                    files.Add((path, resolved, errno, kib));
                }
            }

            var table = new SwapTable(list);
            table.paths.AddRange(names);
            table.files.AddRange(files);
            return table;
        }

        /// <summary>
        /// The active swapfiles whose path, as /proc/swaps shows it, does not lead to them: switched on through a
        /// mount that is gone (a bind mount taken away, a mount namespace that ended), where /proc/swaps shows the
        /// path below that mount's root, which leads nowhere or to another file. Such a swapfile can be anywhere, and
        /// the checks by device and path above do not see it. A path that leads to a file counts as placed unless
        /// the kernel says that file is not an active swapfile (<see cref="Swap.IsActive"/>, on btrfs and xfs).
        /// Asked for only where it matters (deleting several subvolumes), so the other guards do not open anything.
        /// </summary>
        internal IReadOnlyList<string> Unplaced => unplaced ??= FindUnplaced();

        private List<string> FindUnplaced()
        {
            var result = new List<string>();
            foreach ((string path, FileStatus? status, int errno, long sizeKiB) in files)
            {
                if (LeadsElsewhere(status, errno, sizeKiB))
                {
                    result.Add(path);
                    continue;
                }

                if (status is null)
                {
                    continue; // a path this user may not follow: trusted, as before
                }

                try
                {
                    using OpenFile file = OpenFile.Open(path, OpenOptions.None);
                    if (!file.Status.SameInode(status.Value) || Swap.IsActiveWithin(file.Handle, KernelAnswerWithin) == false)
                    {
                        result.Add(path);
                    }
                }
                catch (FileOperationException)
                {
                    // Cannot be opened (another user's directory, a lease): the path is trusted, as before.
                }
            }

            return result;
        }

        /// <summary>How long the kernel's answer (<see cref="Swap.IsActiveWithin"/>) is waited for: a frozen filesystem holds it back.</summary>
        internal static readonly TimeSpan KernelAnswerWithin = TimeSpan.FromSeconds(2);

        /// <summary>
        /// Whether the open file is an active swapfile: a path /proc/swaps shows leads to it (and it can hold that swap
        /// area: a smaller file merely has the path of one switched on through a mount that is gone); or, only where a listed
        /// swapfile's path leads nowhere (switched on through a mount that is gone) and its size fits this file, the
        /// kernel's answer (btrfs, xfs; see <see cref="Swap.IsActive"/>), waited for at most
        /// <see cref="KernelAnswerWithin"/>. The kernel is asked that rarely because its question waits for write access:
        /// on a frozen filesystem until the thaw, and the thread left waiting holds the process's exit until then too.
        /// </summary>
        internal bool HoldsActive(OpenFile file) =>
            files.Exists(f => f.Status is FileStatus st && st.SameInode(file.Status) && !LeadsElsewhere(f.Status, f.Errno, f.SizeKiB))
            || (files.Exists(f => LeadsElsewhere(f.Status, f.Errno, f.SizeKiB) && (f.SizeKiB < 0 || f.SizeKiB * 1024 <= file.Size))
                && Swap.IsActiveWithin(file.Handle, KernelAnswerWithin) == true);

        /// <summary>
        /// A listed swapfile's path that cannot be where it is: leads nowhere (a path this user may not follow, EACCES,
        /// is trusted), or to something that cannot hold a swap area of that many KiB (not a regular file, or smaller):
        /// the path as seen from below the mount the swapfile came through, which is gone.
        /// </summary>
        private static bool LeadsElsewhere(FileStatus? status, int errno, long sizeKiB) =>
            status is not FileStatus st
                ? errno is Errno.ENOENT or Errno.ENOTDIR or Errno.ELOOP
                : !st.IsRegular || (sizeKiB >= 0 && st.Size < sizeKiB * 1024);

        /// <summary>An active swapfile lives on this device: on btrfs, in the subvolume with that (anonymous) device number.</summary>
        internal bool AnyOnDevice(uint major, uint minor) => swaps.Exists(s => s.DevMajor == major && s.DevMinor == minor);

        /// <summary>An active swapfile whose path (as /proc/swaps gives it: canonical) lies below the canonical directory <paramref name="dir"/>.</summary>
        internal bool AnyUnder(string dir) => paths.Exists(p => p.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal));

        internal bool Contains(in FileStatus st)
        {
            foreach (FileStatus s in swaps)
            {
                if (s.SameInode(st))
                {
                    return true;
                }
            }

            return false;
        }
    }
}
