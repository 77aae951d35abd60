namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>swapon(2) (include/linux/swap.h flags).</summary>
    internal static partial class Libc
    {
        internal const int SWAP_FLAG_PREFER = 0x8000;
        internal const int SWAP_FLAG_PRIO_MASK = 0x7FFF;

        [LibraryImport(Name, EntryPoint = "swapon", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int SwapOn(string path, int flags);
    }
}
