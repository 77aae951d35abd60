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

            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.StartsWith("Filename", StringComparison.Ordinal))
                {
                    continue;
                }

                int cut = line.IndexOfAny(new[] { ' ', '\t' });
                string path = MountTable.Unescape(cut < 0 ? line : line[..cut]);
                if (FileStatus.OfPath(path, followLinks: true) is FileStatus swap)
                {
                    list.Add(swap);
                }

                names.Add(path);
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
