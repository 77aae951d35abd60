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

        private SwapTable(List<FileStatus> swaps) => this.swaps = swaps;

        internal static SwapTable Read()
        {
            var list = new List<FileStatus>();
            var names = new List<string>();
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

                if (FileStatus.OfPath(path, followLinks: true) is FileStatus swap)
                {
                    list.Add(swap);
                }
            }

            var table = new SwapTable(list);
            table.paths.AddRange(names);
            return table;
        }

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
