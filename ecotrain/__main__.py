from ecotrain.cli import main

main()
