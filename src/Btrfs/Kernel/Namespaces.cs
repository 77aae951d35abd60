namespace Btrfs.Kernel
{
    using System;
    using System.Text;
    using System.Threading;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>Mount namespaces: reading another one's mount table without running anything in it.</summary>
    internal static class Namespaces
    {
        /// <summary>
        /// The mount table of the mount namespace of <paramref name="nsFile"/> (an nsfs file: /proc/PID/ns/mnt,
        /// or a bind mount of one), as the kernel writes it for that namespace's root; null when it cannot be
        /// read (not root: entering a namespace needs CAP_SYS_ADMIN). Nothing of that namespace is run or
        /// looked up: a thread of this process of its own unshares its filesystem attributes, enters the
        /// namespace, and opens mountinfo relative to its /proc directory opened before; the thread then ends,
        /// and with it that view. This process and its other threads stay where they are.
        /// </summary>
        internal static string? ReadMountTableOf(string nsFile)
        {
            string? table = null;
            var reader = new Thread(
                () =>
                {
                    using SafeFileDescriptor ns = Libc.Open(nsFile, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
                    using SafeFileDescriptor self = Libc.Open("/proc/thread-self", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
                    if (ns.IsInvalid || self.IsInvalid || Libc.Unshare(Libc.CLONE_FS) != 0 || Libc.SetNamespace(ns, Libc.CLONE_NEWNS) != 0)
                    {
                        return;
                    }

                    using SafeFileDescriptor info = Libc.OpenAt(self, "mountinfo", Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0);
                    if (info.IsInvalid)
                    {
                        return;
                    }

                    var text = new StringBuilder();
                    byte[] buffer = new byte[1 << 16];
                    long at = 0;
                    try
                    {
                        while (true)
                        {
                            int n = Files.ReadFullyAt(info, buffer, at, nsFile);
                            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
                            at += n;
                            if (n < buffer.Length)
                            {
                                break;
                            }
                        }
                    }
                    catch (FileOperationException)
                    {
                        return;
                    }

                    table = text.ToString();
                },
                maxStackSize: 256 * 1024)
            {
                IsBackground = true,
                Name = "Btrfs mount namespace reader",
            };
            reader.Start();
            reader.Join();
            return table;
        }
    }
}
