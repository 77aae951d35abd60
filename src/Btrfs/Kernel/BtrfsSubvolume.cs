namespace Btrfs.Kernel
{
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>The btrfs subvolume (or snapshot) a file lives in: BTRFS_IOC_GET_SUBVOL_INFO, which needs no privilege.</summary>
    internal readonly record struct BtrfsSubvolume(ulong Id, string Name, bool IsReadOnly)
    {
        internal static unsafe BtrfsSubvolume? Of(OpenFile file)
        {
            Libc.BtrfsSubvolInfo info = default;
            // The kernel can return a positive value on success (a leftover of its tree search): only < 0 fails.
            if (Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_GET_SUBVOL_INFO, &info) < 0)
            {
                return null; // old kernels (< 4.18) and other filesystems
            }

            string name = Marshal.PtrToStringUTF8((nint)info.Name) ?? string.Empty;
            return new BtrfsSubvolume(info.TreeId, name.Length == 0 ? "<top level>" : name, (info.Flags & Libc.BTRFS_ROOT_SUBVOL_RDONLY) != 0);
        }
    }
}
