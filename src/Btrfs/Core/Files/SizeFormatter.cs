namespace Btrfs.Core
{
    using System.Globalization;
    using Btrfs.Kernel;

    /// <summary>Human-readable byte counts for format views (binary units). Properties stay raw numbers.</summary>
    public static class SizeFormatter
    {
        /// <summary>
        /// <paramref name="total"/> plus a file's <paramref name="size"/> (apparent: holes count), stopping at long.MaxValue
        /// (about 8 EiB), which a few huge sparse files can pass, instead of wrapping round to a negative number.
        /// </summary>
        internal static long AddSize(long total, long size) => size > long.MaxValue - total ? long.MaxValue : total + size;

        private static readonly string[] Units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

        /// <summary>"512 B", "4.00 KiB", "12.5 MiB", "128 MiB": three significant digits at most.</summary>
        public static string Format(long bytes)
        {
            if (bytes < 0)
            {
                return "-" + Format(bytes == long.MinValue ? long.MaxValue : -bytes);
            }

            if (bytes < 1024)
            {
                return bytes.ToString(CultureInfo.InvariantCulture) + " B";
            }

            double value = bytes;
            int unit = 0;
            while (value >= 1024 && unit < Units.Length - 1)
            {
                value /= 1024;
                unit++;
            }

            // Round first, so 1023.99 KiB does not print as "1024 KiB".
            string format = value < 9.995 ? "0.00" : value < 99.95 ? "0.0" : "0";
            string text = value.ToString(format, CultureInfo.InvariantCulture);
            if (text == "1024" && unit < Units.Length - 1)
            {
                return "1.00 " + Units[unit + 1];
            }

            return text + " " + Units[unit];
        }
    }
}
