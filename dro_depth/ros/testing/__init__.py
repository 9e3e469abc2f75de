"""Harness for the demo, the benchmarks and the tests: a frame player, an output collector, a client node and
helpers that start the installed executables. Not part of the node itself; may import rclpy and ros/.
"""
