namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Runtime.InteropServices;
    using Btrfs.Kernel;

    /// <summary>
    /// Makes the calling thread an ordinary user for the ioctls that check a capability rather than
    /// file permissions (TREE_SEARCH, LOGICAL_INO, INO_PATHS need CAP_SYS_ADMIN): file credentials
    /// become nobody's (<see cref="FsUid"/>) and CAP_SYS_ADMIN leaves the thread's effective set
    /// (capset(2) acts on the calling thread only; the permitted set keeps it, so Dispose restores it).
    /// Hosted runspaces run on the calling thread, so the cmdlet really runs without the capability.
    /// </summary>
    internal sealed class Unprivileged : IDisposable
    {
        private const uint Version3 = 0x20080522;
        private const int CapSysAdmin = 21;
        private readonly FsUid user;
        private readonly CapData[] saved = new CapData[2];

        private Unprivileged(bool allCapabilities)
        {
            user = FsUid.Become(FsUid.Nobody);
            var header = new CapHeader { Version = Version3, Pid = 0 };
            var data = new CapData[2];
            Check(capget(ref header, data), "capget");
            Array.Copy(data, saved, 2);
            if (allCapabilities)
            {
                data[0].Effective = 0;
                data[1].Effective = 0;
            }
            else
            {
                data[0].Effective &= ~(1u << CapSysAdmin);
            }

            Check(capset(ref header, data), "capset");
            Check(capget(ref header, data), "capget");
            if ((data[0].Effective & (1u << CapSysAdmin)) != 0 || (allCapabilities && (data[0].Effective | data[1].Effective) != 0))
            {
                throw new InvalidOperationException("capabilities are still effective after capset");
            }
        }

        /// <summary>Nobody's file credentials, without CAP_SYS_ADMIN (the other capabilities stay).</summary>
        internal static Unprivileged Begin() => new(allCapabilities: false);

        /// <summary>
        /// Nobody as far as the kernel's checks of this thread go: nobody's file credentials and no
        /// effective capability at all (no CAP_LEASE, no CAP_SYS_PTRACE: other users' /proc/*/fd and
        /// maps are unreadable, a lease only on nobody's own files).
        /// </summary>
        internal static Unprivileged AsNobody() => new(allCapabilities: true);

        public void Dispose()
        {
            var header = new CapHeader { Version = Version3, Pid = 0 };
            capset(ref header, saved);
            user.Dispose();
        }

        private static void Check(int rc, string what)
        {
            if (rc != 0)
            {
                throw new InvalidOperationException($"{what} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct CapHeader
        {
            public uint Version;
            public int Pid;
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct CapData
        {
            public uint Effective;
            public uint Permitted;
            public uint Inheritable;
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int capget(ref CapHeader header, [In, Out] CapData[] data);

        [DllImport("libc", SetLastError = true)]
        private static extern int capset(ref CapHeader header, [In] CapData[] data);
    }
}
