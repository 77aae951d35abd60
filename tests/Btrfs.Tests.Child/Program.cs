// A child process for the fault tests: it runs one Core operation on a file and, once a given number of
// bytes is done, prints "paused" and waits, so the test can kill it with SIGKILL at a known point.
//   Btrfs.Tests.Child convert-to-nocow <path> <pause-after-bytes>
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Btrfs.Tests.Child
{
    using System;
    using System.Globalization;
    using System.Threading;
    using Btrfs.Core;

    public static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length != 3 || args[0] != "convert-to-nocow")
            {
                Console.Error.WriteLine("usage: Btrfs.Tests.Child convert-to-nocow <path> <pause-after-bytes>");
                return 2;
            }

            long pauseAfter = long.Parse(args[2], CultureInfo.InvariantCulture);
            Console.WriteLine("ready");
            using NoCowConversion conversion = NoCowConversion.Prepare(args[1], toNoCow: true, allowHardLinks: false);
            conversion.Run(copied =>
            {
                if (copied >= pauseAfter)
                {
                    Console.WriteLine("paused " + copied.ToString(CultureInfo.InvariantCulture));
                    Thread.Sleep(Timeout.Infinite);
                }
            });
            Console.WriteLine("done");
            return 0;
        }
    }
}
