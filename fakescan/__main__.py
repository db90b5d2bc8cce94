from fakescan.cli import main

main()
