namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Runtime.CompilerServices;
    using Btrfs.Interop;

    /// <summary>The loop devices that are bound to a file, and which file.</summary>
    internal static class LoopDevices
    {
        /// <summary>
        /// Each bound loop device (/dev/loopN) with its backing file's device numbers and inode: from
        /// LOOP_GET_STATUS64 where the device can be opened (root), else by looking up the path sysfs shows
        /// (in this process's mount namespace); null numbers when neither tells, not within 5 s, or for a
        /// backing path <paramref name="notAsked"/> says not to look at.
        /// </summary>
        internal static List<(string Device, string BackingPath, uint? Major, uint? Minor, ulong? Inode)> Bound(Func<string, bool>? notAsked = null)
        {
            var bound = new List<(string, string, uint?, uint?, ulong?)>();
            string[] blocks;
            try
            {
                blocks = Directory.GetDirectories("/sys/block", "loop*");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return bound;
            }

            foreach (string block in blocks)
            {
                string name = Path.GetFileName(block), backing;
                try
                {
                    backing = File.ReadAllText(Path.Combine(block, "loop", "backing_file")).TrimEnd('\n');
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    continue; // not bound
                }

                string device = "/dev/" + name;
                if (notAsked?.Invoke(backing) == true)
                {
                    bound.Add((device, backing, null, null, null));
                    continue;
                }

                (uint Major, uint Minor, ulong Inode)? found = Bounded.Run(() => Identify(device, backing), PerDevice, out _)?.Value;
                bound.Add(found is (uint major, uint minor, ulong inode) ? (device, backing, major, minor, inode) : (device, backing, null, null, null));
            }

            return bound;
        }

        /// <summary>
        /// How long one loop device may take to say what backs it. The kernel asks the backing file's filesystem
        /// (LOOP_GET_STATUS64 stats the file), and one on a mount that no longer answers (a stale sshfs or NFS
        /// mount) never does: such a file is on that filesystem, not in any btrfs subvolume, so it is left unknown.
        /// </summary>
        private static readonly TimeSpan PerDevice = TimeSpan.FromSeconds(5);

        private static StrongBox<(uint, uint, ulong)>? Identify(string device, string backing) =>
            Status(device) is (uint major, uint minor, ulong inode) ? new((major, minor, inode))
            : FileStatus.OfPath(backing, followLinks: false) is FileStatus st ? new((st.DevMajor, st.DevMinor, st.Inode))
            : null;

        private static unsafe (uint Major, uint Minor, ulong Inode)? Status(string device)
        {
            using SafeFileDescriptor fd = Libc.Open(device, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0);
            if (fd.IsInvalid)
            {
                return null;
            }

            Libc.LoopInfo64 info = default;
            if (Libc.Ioctl(fd, Libc.LOOP_GET_STATUS64, &info) != 0)
            {
                return null;
            }

            // huge_decode_dev: major in bits 8-19, minor in bits 0-7 and 20-31.
            ulong dev = info.Device;
            return ((uint)((dev & 0xfff00) >> 8), (uint)((dev & 0xff) | ((dev >> 12) & 0xfff00)), info.Inode);
        }
    }
}
