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

        /// <summary>CAP_CHOWN: giving a file any owner and group.</summary>
        private const int CapChown = 0;

        /// <summary>
        /// Whether the calling thread may give a file it owns (made just now) owner <paramref name="uid"/> and group
        /// <paramref name="gid"/>, as the kernel decides it (chown_ok, chgrp_ok): with CAP_CHOWN any; otherwise only its
        /// own filesystem user id, and a group that is its filesystem group id, one of its supplementary groups, or
        /// <paramref name="newFileGid"/> (the group the new file has already, a set-group-ID directory's). True when the
        /// credentials cannot be read: the kernel then says it, at the fchown.
        /// </summary>
        internal static bool MayGiveOwner(uint uid, uint gid, uint newFileGid)
        {
            uint? fsuid = null, fsgid = null;
            ulong? caps = null;
            var groups = new System.Collections.Generic.HashSet<uint>();
            try
            {
                // One read of the thread's credentials: "Uid:\treal\teffective\tsaved\tfilesystem", the same for Gid,
                // "Groups:\tg1 g2 ...", "CapEff:\t<hex>".
                foreach (string line in System.IO.File.ReadLines("/proc/thread-self/status"))
                {
                    string[] fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
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
            }
            catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException or FormatException or OverflowException)
            {
                return true;
            }

            if (fsuid is not uint me || fsgid is not uint myGroup || caps is not ulong effective)
            {
                return true;
            }

            return (effective & (1UL << CapChown)) != 0 || (uid == me && (gid == myGroup || gid == newFileGid || groups.Contains(gid)));
        }

        /// <summary>
        /// Whether the calling thread holds capability <paramref name="capability"/> in its effective set (capabilities are
        /// a thread's: the CapEff line of /proc/thread-self/status, as the kernel reports it; false when that cannot be read).
        /// </summary>
        private static bool HasCapability(int capability)
        {
            try
            {
                foreach (string line in System.IO.File.ReadLines("/proc/thread-self/status"))
                {
                    if (line.StartsWith("CapEff:", System.StringComparison.Ordinal))
                    {
                        return ulong.TryParse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ulong caps)
                            && (caps & (1UL << capability)) != 0;
                    }
                }
            }
            catch (System.IO.IOException)
            {
            }
            catch (System.UnauthorizedAccessException)
            {
            }

            return false;
        }
    }
}
