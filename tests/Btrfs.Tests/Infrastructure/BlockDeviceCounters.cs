namespace Btrfs.Tests.Infrastructure
{
    using System.Globalization;
    using System.IO;

    /// <summary>
    /// What a block device (a test filesystem's loop device) has read and written since it was attached, from the
    /// kernel's own count (/sys/block/NAME/stat: sectors of 512 bytes, whatever the device's block size).
    /// </summary>
    internal static class BlockDeviceCounters
    {
        /// <summary>Bytes read from <paramref name="device"/> ("/dev/loop3" or "loop3").</summary>
        internal static long BytesRead(string device) => Field(device, 2) * 512;

        /// <summary>Bytes written to <paramref name="device"/> ("/dev/loop3" or "loop3").</summary>
        internal static long BytesWritten(string device) => Field(device, 6) * 512;

        private static long Field(string device, int index) =>
            long.Parse(File.ReadAllText("/sys/block/" + Path.GetFileName(device) + "/stat").Split(' ', System.StringSplitOptions.RemoveEmptyEntries)[index], CultureInfo.InvariantCulture);
    }
}
