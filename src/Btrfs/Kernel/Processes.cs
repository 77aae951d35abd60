namespace Btrfs.Kernel
{
    using System;
    using Btrfs.Interop;

    /// <summary>Processes and their threads, as the kernel compares them.</summary>
    internal static class Processes
    {
        /// <summary>
        /// Whether thread <paramref name="thread"/> of process <paramref name="process"/> uses the process's own
        /// descriptor table (<paramref name="files"/>) or filesystem attributes (otherwise), as threads do unless
        /// one unshared them (unshare CLONE_FILES or CLONE_FS) or the process's first thread has exited. False
        /// also when the kernel will not compare them for this user (kcmp needs ptrace access to both).
        /// </summary>
        internal static bool SharesWithProcess(int process, int thread, bool files) =>
            Libc.Syscall(Libc.SYS_kcmp, process, thread, files ? Libc.KCMP_FILES : Libc.KCMP_FS, 0, 0) == 0;

        /// <summary>CAP_SYS_ADMIN: what swapon, the tree searches and deleting any subvolume ask of the caller.</summary>
        private const int CapSysAdmin = 21;

        /// <summary>CAP_FOWNER: acting as the owner of any file (a snapshot of another user's subvolume).</summary>
        private const int CapFowner = 3;

        /// <summary>Whether the calling thread holds CAP_SYS_ADMIN in its effective set (<see cref="HasCapability"/>).</summary>
        internal static bool HasSysAdmin() => HasCapability(CapSysAdmin);

        /// <summary>Whether the calling thread holds CAP_FOWNER in its effective set (<see cref="HasCapability"/>).</summary>
        internal static bool HasFowner() => HasCapability(CapFowner);

        /// <summary>CAP_SYS_PTRACE: looking where another process's descriptors lead (/proc/PID/fd/N, cwd, root, map_files).</summary>
        private const int CapSysPtrace = 19;

        /// <summary>Whether the calling thread holds CAP_SYS_PTRACE in its effective set (<see cref="HasCapability"/>).</summary>
        internal static bool HasSysPtrace() => HasCapability(CapSysPtrace);

        /// <summary>The filesystem uid of process <paramref name="pid"/> (the Uid line of /proc/PID/status, readable by all); null when it is gone or cannot be read.</summary>
        internal static uint? FileSystemUidOf(int pid)
        {
            try
            {
                foreach (string[] fields in StatusLines($"/proc/{pid.ToString(System.Globalization.CultureInfo.InvariantCulture)}/status"))
                {
                    if (fields.Length == 5 && fields[0] == "Uid:")
                    {
                        return uint.Parse(fields[4], System.Globalization.CultureInfo.InvariantCulture);
                    }
                }
            }
            catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException or FormatException or OverflowException)
            {
            }

            return null;
        }

        /// <summary>
        /// The lines of a /proc status file, each split into its fields ("Uid:\treal\teffective\tsaved\tfilesystem",
        /// the same for Gid, "Groups:\tg1 g2 ...", "CapEff:\t&lt;hex&gt;"); read lazily, so a caller stops at the line it needs.
        /// </summary>
        internal static System.Collections.Generic.IEnumerable<string[]> StatusLines(string path)
        {
            foreach (string line in System.IO.File.ReadLines(path))
            {
                yield return line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            }
        }

        /// <summary>
        /// The calling thread's credentials as the kernel checks them on files (/proc/thread-self/status and the
        /// user namespace's uid_map and gid_map, read once); null when they cannot be read.
        /// </summary>
        internal static Credentials? Current()
        {
            uint? fsuid = null, fsgid = null;
            ulong? caps = null;
            var groups = new System.Collections.Generic.HashSet<uint>();
            try
            {
                foreach (string[] fields in StatusLines("/proc/thread-self/status"))
                {
                    if (fields.Length == 5 && fields[0] == "Uid:")
                    {
                        fsuid = uint.Parse(fields[4], System.Globalization.CultureInfo.InvariantCulture);
                    }
                    else if (fields.Length == 5 && fields[0] == "Gid:")
                    {
                        fsgid = uint.Parse(fields[4], System.Globalization.CultureInfo.InvariantCulture);
                    }
                    else if (fields.Length > 0 && fields[0] == "Groups:")
                    {
                        foreach (string g in fields.AsSpan(1))
                        {
                            groups.Add(uint.Parse(g, System.Globalization.CultureInfo.InvariantCulture));
                        }
                    }
                    else if (fields.Length == 2 && fields[0] == "CapEff:")
                    {
                        caps = ulong.Parse(fields[1], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
                    }
                }

                if (fsuid is not uint u || fsgid is not uint g0 || caps is not ulong c)
                {
                    return null;
                }

                (uint, ulong)[] uids = IdMap("/proc/thread-self/uid_map"), gids = IdMap("/proc/thread-self/gid_map");
                bool initial = uids.Length == 1 && uids[0] == (0u, 4294967295UL) && gids.Length == 1 && gids[0] == (0u, 4294967295UL);
                return new Credentials(u, g0, groups, c, uids, gids)
                {
                    // Outside the first user namespace, an owner not mapped here shows as the overflow id, which may well
                    // be mapped itself (0-65535 in a rootless container): such an id is taken as not mapped.
                    OverflowUid = initial ? null : Overflow("/proc/sys/kernel/overflowuid"),
                    OverflowGid = initial ? null : Overflow("/proc/sys/kernel/overflowgid"),
                };
            }
            catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException or FormatException or OverflowException)
            {
                return null;
            }
        }

        private static uint? Overflow(string path) =>
            uint.TryParse(System.IO.File.Exists(path) ? System.IO.File.ReadAllText(path).Trim() : "65534", System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out uint id) ? id : 65534;

        /// <summary>
        /// The ids of this user namespace that map to an id outside it ("inside outside count" lines): first and count;
        /// every id where the kernel has no user namespaces (no such file).
        /// </summary>
        private static (uint First, ulong Count)[] IdMap(string path)
        {
            if (!System.IO.File.Exists(path))
            {
                return new[] { (0u, 4294967295UL) };
            }

            var ranges = new System.Collections.Generic.List<(uint, ulong)>();
            foreach (string line in System.IO.File.ReadLines(path))
            {
                string[] f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (f.Length == 3)
                {
                    ranges.Add((uint.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture), ulong.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture)));
                }
            }

            return ranges.ToArray();
        }

        /// <summary>A thread's filesystem credentials: ids, supplementary groups, effective capabilities, and its user namespace's maps.</summary>
        internal sealed record Credentials(uint FsUid, uint FsGid, System.Collections.Generic.IReadOnlySet<uint> Groups, ulong Effective, (uint First, ulong Count)[] UidMap, (uint First, ulong Count)[] GidMap)
        {
            /// <summary>CAP_CHOWN: giving a file any owner and group.</summary>
            internal const int Chown = 0;

            /// <summary>CAP_FOWNER: acting as the owner of any file (its mode, its times, O_NOATIME, a sticky directory's entries).</summary>
            internal const int Fowner = 3;

            /// <summary>CAP_FSETID: keeping a file's set-group-ID bit without being in its group.</summary>
            internal const int Fsetid = 4;

            /// <summary>Group <paramref name="gid"/> is this thread's (in_group_p: its filesystem group or a supplementary one; never the overflow id, which stands for any group not mapped here).</summary>
            internal bool InGroup(uint gid) => gid != OverflowGid && (gid == FsGid || Groups.Contains(gid));

            /// <summary>
            /// The capability counts for a file owned by <paramref name="uid"/>:<paramref name="gid"/>
            /// (capable_wrt_inode_uidgid): held, and both ids mapped in this user namespace (one that is not shows as
            /// the overflow id, 65534, and no capability of a namespace reaches it).
            /// </summary>
            internal bool Has(int capability, uint uid, uint gid) =>
                (Effective & (1UL << capability)) != 0 && uid != OverflowUid && gid != OverflowGid && Mapped(UidMap, uid) && Mapped(GidMap, gid);

            /// <summary>The id an owner not mapped in this user namespace shows as (null in the first namespace, where every id is mapped).</summary>
            internal uint? OverflowUid { get; init; }

            /// <summary>The same for groups.</summary>
            internal uint? OverflowGid { get; init; }

            private static bool Mapped((uint First, ulong Count)[] map, uint id) =>
                Array.Exists(map, r => id >= r.First && id - (ulong)r.First < r.Count);
        }

        /// <summary>
        /// Whether the calling thread holds capability <paramref name="capability"/> in its effective set (capabilities are
        /// a thread's: the CapEff line of /proc/thread-self/status, as the kernel reports it; false when that cannot be read).
        /// </summary>
        private static bool HasCapability(int capability)
        {
            try
            {
                foreach (string[] fields in StatusLines("/proc/thread-self/status"))
                {
                    if (fields.Length == 2 && fields[0] == "CapEff:")
                    {
                        return ulong.TryParse(fields[1], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ulong caps)
                            && (caps & (1UL << capability)) != 0;
                    }
                }
            }
            catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException)
            {
            }

            return false;
        }
    }
}
