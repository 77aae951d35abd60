namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using Btrfs.Interop;

    /// <summary>The loop devices that are bound to a file, and which file.</summary>
    internal static class LoopDevices
    {
        /// <summary>
        /// Each bound loop device (/dev/loopN) with its backing file's device numbers and inode: from
        /// LOOP_GET_STATUS64 where the device can be opened (root), else by looking up the path sysfs shows
        /// (in this process's mount namespace); null numbers when neither tells.
        /// </summary>
        internal static List<(string Device, string BackingPath, uint? Major, uint? Minor, ulong? Inode)> Bound()
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
                if (Status(device) is (uint major, uint minor, ulong inode))
                {
                    bound.Add((device, backing, major, minor, inode));
                }
                else if (FileStatus.OfPath(backing, followLinks: false) is FileStatus st)
                {
                    bound.Add((device, backing, st.DevMajor, st.DevMinor, st.Inode));
                }
                else
                {
                    bound.Add((device, backing, null, null, null));
                }
            }

            return bound;
        }

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
