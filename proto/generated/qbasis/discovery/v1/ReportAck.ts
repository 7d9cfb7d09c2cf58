// Original file: proto/discovery.proto


export interface ReportAck {
}

export interface ReportAck__Output {
}
